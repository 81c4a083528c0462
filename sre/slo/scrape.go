package slo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxScrapeBody is the largest metrics page a Scraper reads from one URL.
const maxScrapeBody = 32 << 20

// defaultScrapeTimeout bounds each request of a Scraper whose client has no Timeout: one
// sampling interval.
const defaultScrapeTimeout = 5 * time.Second

// Scraper is a prometheus.Gatherer over the metrics pages of other processes, for an
// Evaluator that runs outside the services it watches.
type Scraper struct {
	urls  []string
	token string
	hc    *http.Client
}

var _ prometheus.Gatherer = (*Scraper)(nil)

// Scrape returns a Scraper of urls, each a page in the Prometheus text format (a service's
// admin /metrics). A non-empty token is sent as "Authorization: Bearer <token>". Each
// request is bounded by hc's Timeout, or by 5 s (one sampling interval) when hc has none or
// is nil. A page may be at most 32 MiB.
func Scrape(urls []string, token string, hc *http.Client) *Scraper {
	if hc == nil {
		hc = &http.Client{Timeout: defaultScrapeTimeout}
	}
	return &Scraper{urls: slices.Clone(urls), token: token, hc: hc}
}

// Gather fetches every URL at once and merges the families of the same name across them,
// appending their metrics, so the series of several processes of a service add up.
//
// If any URL fails (no answer, a status other than 200, a body over 32 MiB, a parse
// error, or a family whose type differs between URLs), Gather returns no families and an
// error naming each failing URL. Evaluator.Sample then returns that error and skips the
// sample, rather than reading the counters missing from a partial gather as a restart; the
// next sample that succeeds counts everything since the last one.
func (s *Scraper) Gather() ([]*dto.MetricFamily, error) {
	got := make([]map[string]*dto.MetricFamily, len(s.urls))
	errs := make([]error, len(s.urls))
	var wg sync.WaitGroup
	for i, u := range s.urls {
		wg.Go(func() { got[i], errs[i] = s.fetch(u) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	merged := map[string]*dto.MetricFamily{}
	for i, fams := range got {
		for name, mf := range fams {
			m, ok := merged[name]
			if !ok {
				merged[name] = mf
				continue
			}
			if m.GetType() != mf.GetType() {
				return nil, fmt.Errorf("slo: scrape %s: family %s is a %s, a %s at an earlier URL", s.urls[i], name, mf.GetType(), m.GetType())
			}
			m.Metric = append(m.Metric, mf.Metric...)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(merged))
	for _, mf := range merged {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// fetch reads and parses one URL's page.
func (s *Scraper) fetch(u string) (map[string]*dto.MetricFamily, error) {
	ctx := context.Background()
	if s.hc.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultScrapeTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("slo: scrape %s: %w", u, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL
		}
		return nil, fmt.Errorf("slo: scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("slo: scrape %s: status %s", u, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
			return nil, fmt.Errorf("slo: scrape %s: content type %q; want text/plain", u, ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBody+1))
	if err != nil {
		return nil, fmt.Errorf("slo: scrape %s: %w", u, err)
	}
	if len(body) > maxScrapeBody {
		return nil, fmt.Errorf("slo: scrape %s: body over %d MiB", u, maxScrapeBody>>20)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("slo: scrape %s: %w", u, err)
	}
	return fams, nil
}
