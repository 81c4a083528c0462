package conf_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redline-dev/redline/kit/conf"
)

// errSink collects OnError reports without ever blocking the watcher.
type errSink chan error

func (s errSink) report(err error) {
	select {
	case s <- err:
	default:
	}
}

func (s errSink) wait(t *testing.T) error {
	t.Helper()
	var err error
	require.Eventually(t, func() bool {
		select {
		case err = <-s:
			return true
		default:
			return false
		}
	}, 2*time.Second, 10*time.Millisecond, "no reload error reported")
	return err
}

func TestWatchFile(t *testing.T) {
	// Each case writes the config file its own way: in place, by rename,
	// and by swapping a symlinked directory as Kubernetes does for ConfigMaps.
	type writer func(t *testing.T, dir, body string)
	inPlace := func(t *testing.T, dir, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "redline.yaml"), []byte(body), 0o600))
	}
	rename := func(t *testing.T, dir, body string) { writeFile(t, filepath.Join(dir, "redline.yaml"), body) }
	var version atomic.Int64
	symlinkSwap := func(t *testing.T, dir, body string) {
		v := filepath.Join(dir, "v"+string(rune('0'+version.Add(1))))
		require.NoError(t, os.Mkdir(v, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(v, "redline.yaml"), []byte(body), 0o600))
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(v, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		write writer
	}{
		{name: "in place", write: inPlace},
		{name: "rename", write: rename},
		{
			name: "symlink swap",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.Symlink(filepath.Join("..data", "redline.yaml"), filepath.Join(dir, "redline.yaml")))
			},
			write: symlinkSwap,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			tt.write(t, dir, "http: {timeout: 1s}\n")
			errs := make(errSink, 16)
			c, err := conf.Load(defaults(), conf.WithFile(filepath.Join(dir, "redline.yaml")), conf.WithEnv(""), conf.OnError(errs.report))
			require.NoError(t, err)
			defer c.Close()

			var latest atomic.Pointer[conf.Update]
			require.NoError(t, c.Watch(t.Context(), func() any { return defaults() }, func(u conf.Update) { latest.Store(&u) }))
			timeout := func() time.Duration {
				if u := latest.Load(); u != nil {
					return u.Value.(*testConf).HTTP.Timeout
				}
				return 0
			}

			// A dynamic key changes without a restart.
			tt.write(t, dir, "http: {timeout: 250ms}\n")
			require.Eventually(t, func() bool { return timeout() == 250*time.Millisecond }, 2*time.Second, 10*time.Millisecond)
			u := latest.Load()
			assert.Equal(t, []string{"http.timeout"}, u.Changed)
			assert.Empty(t, u.Static)

			// An invalid edit is rejected and the old config stays.
			tt.write(t, dir, "http: {timeout: fast}\n")
			err = errs.wait(t)
			var ce *conf.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "http.timeout", ce.Key)
			assert.Equal(t, u, latest.Load(), "callback called for an invalid config")
			assert.Equal(t, "250ms", c.Redacted()["http"].(map[string]any)["timeout"])

			// A non-dynamic key is reported as static.
			tt.write(t, dir, "http: {timeout: 300ms, addr: ':9090'}\n")
			require.Eventually(t, func() bool { return timeout() == 300*time.Millisecond }, 2*time.Second, 10*time.Millisecond)
			u = latest.Load()
			assert.Equal(t, []string{"http.addr", "http.timeout"}, u.Changed)
			assert.Equal(t, []string{"http.addr"}, u.Static)
		})
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	path := tempFile(t, "workers: 1\n")
	c, err := conf.Load(defaults(), conf.WithFile(path), conf.WithEnv(""))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	require.NoError(t, c.Watch(ctx, func() any { return defaults() }, func(conf.Update) {}))
	cancel()
	// Close waits for the watch goroutines; goleak checks none is left.
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.Watch(t.Context(), func() any { return defaults() }, func(conf.Update) {}), conf.ErrClosed)
}

func TestWatchRejectsWrongFactory(t *testing.T) {
	c, err := conf.Load(defaults(), conf.WithEnv(""))
	require.NoError(t, err)
	defer c.Close()
	err = c.Watch(t.Context(), func() any { return &httpConf{} }, func(conf.Update) {})
	assert.ErrorIs(t, err, conf.ErrBadTarget)
}
