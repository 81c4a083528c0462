package conf_test

import (
	"os"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/conf"
)

type fuzzConf struct {
	testConf `koanf:"base"`
	Ptr      *httpConf            `koanf:"ptr"`
	List     []httpConf           `koanf:"list"`
	ByName   map[string]*httpConf `koanf:"by_name"`
	Any      any                  `koanf:"any"`
	Small    int8                 `koanf:"small"`
	Unsigned uint16               `koanf:"unsigned"`
	At       time.Time            `koanf:"at"`
	Ratio    float32              `koanf:"ratio"`
}

func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"",
		"base: {http: {timeout: 150ms}}\n",
		"ptr: {timeout: 1s}\nlist: [{addr: x, timeout: 2s}]\nby_name: {a: {timeout: 1ms}}\n",
		"any: [1, {a: b}]\nsmall: 300\nunsigned: -1\nat: 2024-01-01T00:00:00Z\nratio: 1e100\n",
		"base: {labels: {a.b: c}, peers: 5}\n",
		"? [a]\n: b\n",
		"a: &x [*x]\n",
		"- 1\n- 2\n",
		"1: 2\n",
		"base:\n  http: null\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fh, err := os.CreateTemp(dir, "fuzz-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		path := fh.Name()
		defer os.Remove(path)
		_, werr := fh.Write(b)
		if cerr := fh.Close(); werr != nil || cerr != nil {
			t.Fatal(werr, cerr)
		}
		dst := &fuzzConf{testConf: *defaults()}
		c, err := conf.Load(dst, conf.WithFile(path), conf.WithEnv(""))
		if err == nil {
			_ = c.Redacted()
			_ = c.Close()
			return
		}
		if _, ok := err.(*conf.Error); !ok {
			t.Fatalf("Load returned %T (%v); want *conf.Error", err, err)
		}
	})
}
