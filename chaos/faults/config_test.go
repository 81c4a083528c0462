package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redline-dev/redline/kit/conf"
)

type testConfig struct {
	Chaos struct {
		Faults []Spec `koanf:"faults" dynamic:"true"`
	} `koanf:"chaos"`
}

func loadYAML(t *testing.T, yaml string) (testConfig, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "redline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg testConfig
	_, err := conf.Load(&cfg, conf.WithFile(path), conf.WithEnv("REDLINE_FAULTS_TEST_"))
	return cfg, err
}

// TestConfigYAML decodes chaos.faults with the kit's config loader, as a service does.
func TestConfigYAML(t *testing.T) {
	cfg, err := loadYAML(t, `
chaos:
  faults:
    - type: error
      service: payment
      kind: http
      side: client
      code: 503
      percent: 10
      ttl: 30m
      reason: game day, payment provider outage
    - type: delay
      delay: 250ms
      jitter: 50ms
      lane: baseline
      op: "GET /v1/*"
`)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	f := cfg.Chaos.Faults
	if len(f) != 2 || f[0].Code != "503" || f[0].Percent != 10 || f[0].TTL != "30m" || f[1].Delay != "250ms" || f[1].Op != "GET /v1/*" {
		t.Fatalf("decoded %+v", f)
	}
	e := newEnv(t)
	if err := e.reg.SetConfig(f); err != nil {
		t.Fatalf("SetConfig = %v", err)
	}
	if l := e.reg.List(); len(l) != 2 || l[0].Source != SourceConfig {
		t.Errorf("List = %+v; want two config faults", l)
	}

	_, err = loadYAML(t, "chaos:\n  faults:\n    - type: delay\n      delay: abc\n")
	var ce *conf.Error
	if !errors.As(err, &ce) || ce.Key != "chaos.faults[0]" || !strings.Contains(ce.Problem, `fault: delay: "abc" is not a duration`) {
		t.Errorf("Load(bad delay) = %v; want an error at chaos.faults[0] naming delay", err)
	}
	_, err = loadYAML(t, "chaos:\n  faults:\n    - type: abort\n      percnet: 5\n")
	if !errors.As(err, &ce) || ce.Key != "chaos.faults[0].percnet" {
		t.Errorf("Load(unknown key) = %v; want an error at chaos.faults[0].percnet", err)
	}
}
