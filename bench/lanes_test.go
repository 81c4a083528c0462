package bench

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
	"github.com/redline-dev/redline/stress/lane"
)

// BenchmarkLaneCost is what lanes and shadow routing cost the demo: a note card read
// (GET /v1/notes/{id}: BFF, note, user, interaction) through the whole in-process stack,
// in parallel,
//
//   - baseline/shadow-off: no shadow instances (stress.shadow: false), so no lane dispatch
//     in the servers;
//   - baseline/shadow-on: the default, where every call passes the lane dispatch, the data
//     clients' lane checks and the balancer's lane filter;
//   - lane/shadow-on: the same read in a signed lane, served by the shadow instances.
//
// Run it interleaved, several times, and compare medians (bench/README.md, "Lanes"):
//
//	go test -run '^$' -bench LaneCost -count 6 -benchtime 3s .
func BenchmarkLaneCost(b *testing.B) {
	const key = "bench-stress-key-0123456789abcdef"
	signer, err := lane.NewSigner(key, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := signer.Sign("bench", time.Hour)
	for _, c := range []struct {
		name   string
		shadow bool
		inLane bool
	}{{"baseline/shadow-off", false, false}, {"baseline/shadow-on", true, false}, {"lane/shadow-on", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			s := stacktest.Start(b, func(cfg *stack.Config) {
				cfg.Stress.Key, cfg.Stress.Shadow = key, c.shadow
				cfg.HA.RateLimit.Off = true // one caller, far over the per-caller edge limit
				cfg.Quota.Routes = nil      // setup writes 20 notes at once
				cfg.Log.Level = "error"
			})
			var headers []string
			if c.inLane {
				headers = []string{"X-Redline-Lane", tok}
			}
			bearer, _ := stacktest.Session(b, s.BFF, "reader", headers...)
			var ids []string
			for i := range 20 {
				r := stacktest.Do(b, "POST", s.BFF+"/v1/notes", map[string]any{"title": fmt.Sprint("note ", i)},
					append([]string{"Authorization", bearer}, headers...)...)
				if r.Status != 201 {
					b.Fatalf("create note = %d %s", r.Status, r.Body)
				}
				var n struct{ ID string }
				r.JSON(b, &n)
				ids = append(ids, n.ID)
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					req, _ := http.NewRequest("GET", s.BFF+"/v1/notes/"+ids[i%len(ids)], nil)
					for j := 0; j+1 < len(headers); j += 2 {
						req.Header.Set(headers[j], headers[j+1])
					}
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), `"title":"note `) {
						b.Errorf("GET note = %d %s", resp.StatusCode, body)
						return
					}
					i++
				}
			})
		})
	}
}
