package slo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// maxScrapeBody is the largest metrics page a Scraper reads from one URL.
const maxScrapeBody = 32 << 20

// defaultScrapeTimeout bounds each request of a Scraper whose client has no Timeout: one
// sampling interval.
const defaultScrapeTimeout = 5 * time.Second

// forgetAfter is how many successful gathers a series may be missing from its URL's page
// before the Scraper stops tracking it there (see Gather).
const forgetAfter = 100

// Scraper is a prometheus.Gatherer over the metrics pages of other processes, for an
// Evaluator that runs outside the services it watches.
//
// It makes the counters of each URL monotonic, as Prometheus's rate does across counter
// resets, so that the restart of one process does not look like a restart of all of them:
// summed over several processes, a counter that drops because one process restarted would
// make the Evaluator count every other process's whole history again.
type Scraper struct {
	urls  []string
	names []string // urls with any password redacted, for errors
	token string
	hc    *http.Client

	mu   sync.Mutex           // serializes Gather, so each URL's series see its pages in order
	live []map[string]*series // per URL, by seriesKey
	dead map[string]*series   // series forgotten at their URL, summed by seriesKey
}

// series is one counter, histogram or summary series of one URL (or, in Scraper.dead, the
// sum of the ones forgotten at every URL). vals are its values as values reads them; raw the
// last ones its URL served and offset what its restarts took away, so it is emitted as
// raw + offset.
type series struct {
	fam    string
	typ    dto.MetricType
	help   string
	labels []*dto.LabelPair
	bounds []float64 // histogram bucket upper bounds
	raw    []float64
	offset []float64
	unseen int // gathers since its URL last served it
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
	s := &Scraper{urls: slices.Clone(urls), token: token, hc: hc, dead: map[string]*series{}}
	for _, u := range urls {
		s.names = append(s.names, redact(u))
		s.live = append(s.live, map[string]*series{})
	}
	return s
}

// redact returns u with any password replaced by "xxxxx".
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// Gather fetches every URL at once and merges the families of the same name across them,
// appending their metrics, so the series of several processes of a service add up.
//
// Counters, histograms (count, sum and buckets) and summaries (count and sum) are made
// monotonic per URL and series (family, labels): when a series's count or a bucket of it
// goes down, that process restarted, and its values before the restart are added to all it
// serves from then on. A series missing from its URL's page (a restarted process that has
// not served that route yet) keeps its last value; after 100 gathers without it, its value
// moves to one series per family and labels summed over every URL, kept for the Scraper's
// life, so the merged counters never go down while the processes' state stays bounded by
// the series they serve. An Evaluator reading the Scraper thus sees a restart of any process
// as the events it served since, and restarts of no process as a drop. A restart that a
// page shows with counts already above the last ones is not seen, as in Prometheus.
// Gauges and untyped families pass through as served. Calls to Gather are serialized.
//
// If any URL fails (no answer, a status other than 200, a body over 32 MiB, a parse
// error, or a family whose type differs between URLs), Gather returns no families and an
// error naming each failing URL (any password redacted), and tracks nothing of that call.
// Evaluator.Sample then returns that error and skips the sample, rather than reading the
// counters missing from a partial gather as a restart; the next sample that succeeds counts
// everything since the last one.
func (s *Scraper) Gather() ([]*dto.MetricFamily, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := make([]map[string]*dto.MetricFamily, len(s.urls))
	errs := make([]error, len(s.urls))
	var wg sync.WaitGroup
	for i := range s.urls {
		wg.Go(func() { got[i], errs[i] = s.fetch(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	types := map[string]dto.MetricType{}
	for i, fams := range got {
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			typ := fams[name].GetType()
			if t, ok := types[name]; ok && t != typ {
				return nil, fmt.Errorf("slo: scrape %s: family %s is a %s, a %s at an earlier URL", s.names[i], name, typ, t)
			}
			types[name] = typ
		}
	}
	merged := map[string]*dto.MetricFamily{}
	add := func(mf *dto.MetricFamily) {
		m, ok := merged[mf.GetName()]
		switch {
		case !ok:
			merged[mf.GetName()] = mf
		case m.GetType() == mf.GetType(): // a forgotten series of a family whose type changed is left out
			m.Metric = append(m.Metric, mf.Metric...)
		}
	}
	var missing []*dto.MetricFamily
	for i, fams := range got {
		missing = append(missing, s.track(i, fams)...)
	}
	for _, fams := range got {
		for _, mf := range fams {
			add(mf)
		}
	}
	for _, mf := range missing {
		add(mf)
	}
	for _, k := range slices.Sorted(maps.Keys(s.dead)) {
		add(s.dead[k].family())
	}
	out := make([]*dto.MetricFamily, 0, len(merged))
	for _, mf := range merged {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// track makes the monotonic families of URL i's page fams monotonic in place and returns
// the series it still tracks there that the page lacks, as one family each.
func (s *Scraper) track(i int, fams map[string]*dto.MetricFamily) []*dto.MetricFamily {
	live := s.live[i]
	seen := map[string]bool{}
	for name, mf := range fams {
		typ := mf.GetType()
		if !monotonic(typ) {
			continue
		}
		for _, m := range mf.Metric {
			k, bounds := seriesKey(name, typ, m)
			if seen[k] {
				continue // a page that repeats a series; leave the repeat as served
			}
			seen[k] = true
			v := values(typ, m)
			st := live[k]
			switch {
			case st == nil:
				st = &series{fam: name, typ: typ, help: mf.GetHelp(), labels: cloneLabels(m.GetLabel()), bounds: bounds, offset: make([]float64, len(v))}
				live[k] = st
			case restarted(typ, v, st.raw):
				for j := range st.offset {
					st.offset[j] += st.raw[j]
				}
			}
			st.raw, st.unseen = v, 0
			setValues(typ, m, st.vals())
		}
	}
	var out []*dto.MetricFamily
	for _, k := range slices.Sorted(maps.Keys(live)) {
		st := live[k]
		if seen[k] {
			continue
		}
		if st.unseen++; st.unseen <= forgetAfter {
			out = append(out, st.family())
			continue
		}
		delete(live, k)
		if d := s.dead[k]; d != nil {
			for j, x := range st.vals() {
				d.offset[j] += x
			}
			continue
		}
		st.offset, st.raw = st.vals(), make([]float64, len(st.raw))
		s.dead[k] = st
	}
	return out
}

func monotonic(typ dto.MetricType) bool {
	return typ == dto.MetricType_COUNTER || typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY
}

// seriesKey names a series of a monotonic family by family, type, sorted labels and, for a
// histogram, bucket bounds (a histogram whose buckets changed is another series); it also
// returns the bounds.
func seriesKey(name string, typ dto.MetricType, m *dto.Metric) (string, []float64) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%s|%d", len(name), name, typ)
	lps := slices.SortedFunc(slices.Values(m.GetLabel()), func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	for _, lp := range lps {
		fmt.Fprintf(&b, "|%d:%s=%d:%s", len(lp.GetName()), lp.GetName(), len(lp.GetValue()), lp.GetValue())
	}
	var bounds []float64
	if typ == dto.MetricType_HISTOGRAM {
		for _, bk := range m.GetHistogram().GetBucket() {
			bounds = append(bounds, bk.GetUpperBound())
			fmt.Fprintf(&b, "|le=%g", bk.GetUpperBound())
		}
	}
	return b.String(), bounds
}

// values reads a counter's value; a histogram's count, sum and each bucket's count; or a
// summary's count and sum.
func values(typ dto.MetricType, m *dto.Metric) []float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return []float64{m.GetCounter().GetValue()}
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		v := []float64{float64(h.GetSampleCount()), h.GetSampleSum()}
		for _, bk := range h.GetBucket() {
			v = append(v, float64(bk.GetCumulativeCount()))
		}
		return v
	default:
		return []float64{float64(m.GetSummary().GetSampleCount()), m.GetSummary().GetSampleSum()}
	}
}

// restarted reports whether the values v of a series that was last at last show a restart:
// a count (not a sum, which negative observations may lower) went down.
func restarted(typ dto.MetricType, v, last []float64) bool {
	for j := range v {
		if j == 1 && typ != dto.MetricType_COUNTER {
			continue
		}
		if v[j] < last[j] {
			return true
		}
	}
	return false
}

// setValues writes v, as values reads them, into m.
func setValues(typ dto.MetricType, m *dto.Metric, v []float64) {
	switch typ {
	case dto.MetricType_COUNTER:
		if m.Counter == nil {
			m.Counter = &dto.Counter{}
		}
		m.Counter.Value = &v[0]
	case dto.MetricType_HISTOGRAM:
		if m.Histogram == nil {
			m.Histogram = &dto.Histogram{}
		}
		h := m.Histogram
		h.SampleCount, h.SampleCountFloat, h.SampleSum = proto.Uint64(uint64(v[0])), nil, &v[1]
		for j, bk := range h.Bucket {
			bk.CumulativeCount, bk.CumulativeCountFloat = proto.Uint64(uint64(v[2+j])), nil
		}
	default:
		if m.Summary == nil {
			m.Summary = &dto.Summary{}
		}
		m.Summary.SampleCount, m.Summary.SampleSum = proto.Uint64(uint64(v[0])), &v[1]
	}
}

// vals returns raw + offset.
func (st *series) vals() []float64 {
	v := make([]float64, len(st.raw))
	for j := range v {
		v[j] = st.raw[j] + st.offset[j]
	}
	return v
}

// family returns st at its current values as a family of its own.
func (st *series) family() *dto.MetricFamily {
	m := &dto.Metric{Label: cloneLabels(st.labels)}
	if st.typ == dto.MetricType_HISTOGRAM {
		m.Histogram = &dto.Histogram{}
		for _, b := range st.bounds {
			m.Histogram.Bucket = append(m.Histogram.Bucket, &dto.Bucket{UpperBound: proto.Float64(b)})
		}
	}
	setValues(st.typ, m, st.vals())
	return &dto.MetricFamily{Name: proto.String(st.fam), Help: proto.String(st.help), Type: st.typ.Enum(), Metric: []*dto.Metric{m}}
}

func cloneLabels(lps []*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(lps))
	for i, lp := range lps {
		out[i] = &dto.LabelPair{Name: proto.String(lp.GetName()), Value: proto.String(lp.GetValue())}
	}
	return out
}

// fetch reads and parses one URL's page.
func (s *Scraper) fetch(i int) (map[string]*dto.MetricFamily, error) {
	u, name := s.urls[i], s.names[i]
	ctx := context.Background()
	if s.hc.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultScrapeTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL, password included
		}
		return nil, fmt.Errorf("slo: scrape %s: %w", name, err)
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
		return nil, fmt.Errorf("slo: scrape %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("slo: scrape %s: status %s", name, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
			return nil, fmt.Errorf("slo: scrape %s: content type %q; want text/plain", name, ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBody+1))
	if err != nil {
		return nil, fmt.Errorf("slo: scrape %s: %w", name, err)
	}
	if len(body) > maxScrapeBody {
		return nil, fmt.Errorf("slo: scrape %s: body over %d MiB", name, maxScrapeBody>>20)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("slo: scrape %s: %w", name, err)
	}
	return fams, nil
}
