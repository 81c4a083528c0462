package conf_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redline-dev/redline/kit/conf"
)

type httpConf struct {
	Addr        string        `koanf:"addr"`
	Timeout     time.Duration `koanf:"timeout" dynamic:"true"`
	ReadTimeout time.Duration `koanf:"read_timeout"`
}

func (h httpConf) Validate() error {
	if h.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	return nil
}

type adminConf struct {
	Token    string `koanf:"token"`
	Password string `koanf:"pw" secret:"true"`
	Port     int    `koanf:"port"`
}

type testConf struct {
	Name      string                   `koanf:"name"`
	HTTP      httpConf                 `koanf:"http"`
	Workers   int                      `koanf:"workers"`
	Ratio     float64                  `koanf:"ratio"`
	Debug     bool                     `koanf:"debug" dynamic:"true"`
	Peers     []string                 `koanf:"peers"`
	Labels    map[string]string        `koanf:"labels"`
	Limits    map[string]time.Duration `koanf:"limits"`
	StressKey string                   `koanf:"stress_key"`
	Admin     adminConf                `koanf:"admin"`
}

func defaults() *testConf {
	return &testConf{
		Name:    "svc",
		HTTP:    httpConf{Addr: ":8080", Timeout: time.Second},
		Workers: 4,
		Labels:  map[string]string{"zone": "a"},
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	// Write then rename, as editors and config management do.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func tempFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "redline.yaml")
	writeFile(t, p, body)
	return p
}

func TestLoadLayers(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		want  func(*testConf)
	}{
		{
			name: "defaults only",
			want: func(c *testConf) {},
		},
		{
			name: "file overrides defaults",
			file: "name: feed\nhttp:\n  timeout: 150ms\n  read_timeout: 2s\nworkers: 8\nratio: 0.5\ndebug: true\npeers: [a, b]\nlimits: {get: 10ms}\n",
			want: func(c *testConf) {
				c.Name, c.HTTP.Timeout, c.HTTP.ReadTimeout, c.Workers, c.Ratio, c.Debug = "feed", 150*time.Millisecond, 2*time.Second, 8, 0.5, true
				c.Peers = []string{"a", "b"}
				c.Limits = map[string]time.Duration{"get": 10 * time.Millisecond}
			},
		},
		{
			name: "env overrides file",
			file: "workers: 8\nhttp: {timeout: 150ms}\n",
			env:  map[string]string{"WORKERS": "16", "HTTP__READ_TIMEOUT": "3s", "PEERS": "x, y", "LABELS__LANE": "canary", "NOT_A_KEY": "ignored"},
			want: func(c *testConf) {
				c.Workers, c.HTTP.Timeout, c.HTTP.ReadTimeout = 16, 150*time.Millisecond, 3*time.Second
				c.Peers = []string{"x", "y"}
				c.Labels = map[string]string{"zone": "a", "lane": "canary"}
			},
		},
		{
			name:  "changed flags override env, unchanged flags do not",
			file:  "workers: 8\n",
			env:   map[string]string{"WORKERS": "16", "NAME": "from-env"},
			flags: []string{"--workers=32", "--peers=p1,p2"},
			want: func(c *testConf) {
				c.Workers, c.Name = 32, "from-env"
				c.Peers = []string{"p1", "p2"}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "RLTEST" + string(rune('A'+i)) + "_"
			for k, v := range tt.env {
				t.Setenv(prefix+k, v)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			fs.Int("workers", 1, "")
			fs.String("name", "flag-default", "")
			fs.StringSlice("peers", nil, "")
			fs.Bool("verbose", false, "not a config key")
			require.NoError(t, fs.Parse(tt.flags))

			opts := []conf.Option{conf.WithEnv(prefix), conf.WithFlags(fs)}
			if tt.file != "" {
				opts = append(opts, conf.WithFile(tempFile(t, tt.file)))
			}
			got := defaults()
			c, err := conf.Load(got, opts...)
			require.NoError(t, err)
			require.NoError(t, c.Close())

			want := defaults()
			tt.want(want)
			assert.Equal(t, want, got)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string // written to a temp file unless "missing"
		env     map[string]string
		flags   []string
		source  string // "FILE" stands for the temp file path
		key     string
		problem string
		is      error
	}{
		{
			name: "bad duration in file", file: "http:\n  timeout: fast\n",
			source: "FILE", key: "http.timeout", problem: `cannot parse "fast" as duration`, is: conf.ErrBadValue,
		},
		{
			name: "number for duration", file: "http:\n  timeout: 5\n",
			source: "FILE", key: "http.timeout", problem: "cannot parse 5 as duration", is: conf.ErrBadValue,
		},
		{
			name: "unknown key in file", file: "http:\n  timout: 1s\n",
			source: "FILE", key: "http.timout", problem: "unknown key", is: conf.ErrUnknownKey,
		},
		{
			name: "unknown top-level section", file: "htp:\n  timeout: 1s\n",
			source: "FILE", key: "htp", problem: "unknown key", is: conf.ErrUnknownKey,
		},
		{
			name: "object where scalar expected", file: "workers: {a: 1}\n",
			source: "FILE", key: "workers", problem: "cannot parse an object as int", is: conf.ErrBadValue,
		},
		{
			name: "bad list element", file: "limits: {get: slow}\n",
			source: "FILE", key: "limits.get", problem: `cannot parse "slow" as duration`, is: conf.ErrBadValue,
		},
		{
			name: "bad int from env names the variable", env: map[string]string{"WORKERS": "many"},
			source: "env PREFIX_WORKERS", key: "workers", problem: `cannot parse "many" as int`, is: conf.ErrBadValue,
		},
		{
			name: "bad duration from env over a good file", file: "http: {timeout: 1s}\n", env: map[string]string{"HTTP__TIMEOUT": "soon"},
			source: "env PREFIX_HTTP__TIMEOUT", key: "http.timeout", problem: `cannot parse "soon" as duration`, is: conf.ErrBadValue,
		},
		{
			name: "bad duration from flag names the flag", flags: []string{"--http.timeout=fast"},
			source: "flag --http.timeout", key: "http.timeout", problem: `cannot parse "fast" as duration`, is: conf.ErrBadValue,
		},
		{
			name: "validation names the struct key", file: "http: {timeout: -1s}\n",
			source: "FILE", key: "http", problem: "timeout must be positive", is: conf.ErrInvalid,
		},
		{
			name: "out of range", file: "admin: {port: 99999999999999999999}\n",
			source: "FILE", key: "admin.port", is: conf.ErrBadValue,
		},
		{
			name: "secret value is not printed", file: "stress_key: [hunter2]\n",
			source: "FILE", key: "stress_key", problem: "cannot parse REDACTED as string", is: conf.ErrBadValue,
		},
		{
			name: "invalid yaml", file: "http: [\n",
			source: "FILE", problem: "invalid YAML",
		},
		{
			name: "missing file", file: "missing",
			source: "FILE", problem: "file does not exist", is: fs.ErrNotExist,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "RLERR" + string(rune('A'+i)) + "_"
			for k, v := range tt.env {
				t.Setenv(prefix+k, v)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			fs.String("http.timeout", "", "")
			require.NoError(t, fs.Parse(tt.flags))
			opts := []conf.Option{conf.WithEnv(prefix), conf.WithFlags(fs)}
			var path string
			switch tt.file {
			case "":
			case "missing":
				path = filepath.Join(t.TempDir(), "nope.yaml")
			default:
				path = tempFile(t, tt.file)
			}
			if path != "" {
				opts = append(opts, conf.WithFile(path))
			}

			_, err := conf.Load(defaults(), opts...)
			var ce *conf.Error
			require.ErrorAs(t, err, &ce)
			wantSource := strings.ReplaceAll(strings.ReplaceAll(tt.source, "FILE", path), "PREFIX_", prefix)
			assert.Equal(t, wantSource, ce.Source)
			assert.Equal(t, tt.key, ce.Key)
			assert.Contains(t, ce.Problem, tt.problem)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := &conf.Error{Source: "/etc/redline.yaml", Key: "http.timeout", Problem: `cannot parse "fast" as duration`}
	want := `config: /etc/redline.yaml: key "http.timeout": cannot parse "fast" as duration`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestLoadBadTarget(t *testing.T) {
	for _, dst := range []any{nil, testConf{}, (*testConf)(nil), new(int)} {
		_, err := conf.Load(dst, conf.WithEnv(""))
		assert.ErrorIs(t, err, conf.ErrBadTarget, "Load(%T)", dst)
	}
}

func TestRedacted(t *testing.T) {
	path := tempFile(t, "stress_key: s3cret\nadmin: {token: tok, pw: pw, port: 9}\nlabels: {api_token: x, lane: canary}\nhttp: {timeout: 150ms}\n")
	c, err := conf.Load(defaults(), conf.WithFile(path), conf.WithEnv(""))
	require.NoError(t, err)
	defer c.Close()

	got := c.Redacted()
	tests := []struct {
		path []string
		want any
	}{
		{[]string{"stress_key"}, "REDACTED"},
		{[]string{"admin", "token"}, "REDACTED"},
		{[]string{"admin", "pw"}, "REDACTED"},
		{[]string{"admin", "port"}, 9},
		{[]string{"labels", "api_token"}, "REDACTED"},
		{[]string{"labels", "lane"}, "canary"},
		{[]string{"http", "timeout"}, "150ms"},
		{[]string{"name"}, "svc"},
	}
	for _, tt := range tests {
		var v any = got
		for _, p := range tt.path {
			m, ok := v.(map[string]any)
			require.True(t, ok, "Redacted()[%v] is not a map", tt.path)
			v = m[p]
		}
		assert.Equal(t, tt.want, v, "Redacted()%v", tt.path)
	}
}

func TestRedactedHidesURLPasswords(t *testing.T) {
	type C struct {
		DB    string `koanf:"db"`
		Cache string `koanf:"cache"`
	}
	c := C{DB: "postgres://app:s3cret@db:5432/app", Cache: "redis://127.0.0.1:6379/0"}
	loaded, err := conf.Load(&c, conf.WithEnv(""))
	if err != nil {
		t.Fatal(err)
	}
	got := loaded.Redacted()
	if strings.Contains(fmt.Sprint(got), "s3cret") || got["cache"] != "redis://127.0.0.1:6379/0" {
		t.Fatalf("Redacted() = %v; want the password hidden and password-less URLs intact", got)
	}
}
