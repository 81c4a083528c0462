package conf_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/registry/registrytest"
)

func TestEtcdSource(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	key := registrytest.EtcdPrefix(t, cli) + "conf"
	ctx := t.Context()
	_, err := cli.Put(ctx, key, "workers: 7\nhttp: {timeout: 200ms}\n")
	require.NoError(t, err)

	file := filepath.Join(t.TempDir(), "redline.yaml")
	writeFile(t, file, "workers: 3\nname: from-file\n")
	errs := make(errSink, 16)
	got := defaults()
	c, err := conf.Load(got, conf.WithFile(file), conf.WithSource(conf.NewEtcdSource(cli, key)), conf.WithEnv(""), conf.OnError(errs.report))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, 7, got.Workers, "etcd layers above the file")
	assert.Equal(t, "from-file", got.Name)
	assert.Equal(t, 200*time.Millisecond, got.HTTP.Timeout)

	var latest atomic.Pointer[testConf]
	require.NoError(t, c.Watch(ctx, func() any { return defaults() }, func(u conf.Update) { latest.Store(u.Value.(*testConf)) }))
	timeout := func() time.Duration {
		if v := latest.Load(); v != nil {
			return v.HTTP.Timeout
		}
		return 0
	}

	_, err = cli.Put(ctx, key, "workers: 7\nhttp: {timeout: 400ms}\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return timeout() == 400*time.Millisecond }, 2*time.Second, 10*time.Millisecond)

	_, err = cli.Put(ctx, key, "workers: 7\nhttp: {timout: 1s}\n")
	require.NoError(t, err)
	err = errs.wait(t)
	var ce *conf.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "etcd:"+key, ce.Source)
	assert.Equal(t, "http.timout", ce.Key)
	assert.Equal(t, 400*time.Millisecond, timeout())
}

func TestEtcdSourceMissingKey(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	got := defaults()
	c, err := conf.Load(got, conf.WithSource(conf.NewEtcdSource(cli, registrytest.EtcdPrefix(t, cli)+"conf")), conf.WithEnv(""))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, defaults(), got)
}
