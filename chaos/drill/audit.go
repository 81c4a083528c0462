package drill

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// auditPath is where the admin endpoint (or the supervisor's, under --procs) audits the shop.
const auditPath = "/chaos/audit/checkout"

// checkoutAudit is the answer of GET /chaos/audit/checkout (services/stack.CheckoutAudit):
// the shop's orders, payments and stock, whether it has settled, and what is inconsistent.
type checkoutAudit struct {
	Settled   bool           `json:"settled"`
	Unsettled []string       `json:"unsettled"`
	Orders    map[string]int `json:"orders"`
	Payments  map[string]int `json:"payments"`
	SKUs      []struct {
		SKU       int64 `json:"sku"`
		Available int64 `json:"available"`
		Reserved  int64 `json:"reserved"`
		Sold      int64 `json:"sold"`
	} `json:"skus"`
	Problems []string `json:"problems"`
}

// totals is each SKU's stock plus reserved plus sold.
func (a *checkoutAudit) totals() map[int64]int64 {
	out := map[int64]int64{}
	for _, s := range a.SKUs {
		out[s.SKU] = s.Available + s.Reserved + s.Sold
	}
	return out
}

func (a *checkoutAudit) count(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// audits reports whether an expectation asks for the checkout audit.
func (r *run) audits() bool {
	return slices.ContainsFunc(r.d.Expect, func(e Expectation) bool { return e.Kind() == ExpectAudit })
}

// auditAPI is where the audit is asked: the supervisor under --procs, else the admin endpoint.
func (r *run) auditAPI() *api {
	if r.procs != nil {
		return r.procs
	}
	return r.admin
}

// auditNow audits the shop once into *dst; a drill whose audit cannot be read before it
// starts does not start.
func (r *run) auditNow(ctx context.Context, when string, dst **checkoutAudit) error {
	var a checkoutAudit
	if err := r.auditAPI().do(ctx, http.MethodGet, auditPath, nil, &a); err != nil {
		return fmt.Errorf("audit the shop %s the drill: %w (the checkout audit needs the order, inventory and payment "+
			"services in the process behind it, and chaos on)", when, err)
	}
	*dst = &a
	r.say(r.clk.Now(), "audit %s: %d orders, %d payments, %d SKUs, %s", when, a.count(a.Orders), a.count(a.Payments), len(a.SKUs),
		plural(len(a.Problems), "problem"))
	return nil
}

// auditSettled audits the shop after the drill, once it has settled (no order being
// created, no payment pending), waiting at most the longest settle of the audit
// expectations; an unsettled shop is judged as it is then.
func (r *run) auditSettled(ctx context.Context) {
	settle := time.Duration(0)
	for _, e := range r.d.Expect {
		if e.Kind() == ExpectAudit {
			settle = max(settle, cmp.Or(e.Settle, DefaultSettle))
		}
	}
	deadline := r.clk.Now().Add(settle)
	r.say(r.clk.Now(), "audit after: waiting up to %v for the shop to settle", settle)
	for {
		var a *checkoutAudit
		err := r.auditNow(ctx, "after", &a)
		switch {
		case err != nil:
			r.auditErr = err.Error()
		case a.Settled:
			r.auditAfter, r.auditErr = a, ""
			return
		default:
			r.auditAfter = a
		}
		if !r.clk.Now().Before(deadline) || r.clk.SleepUntil(ctx, minTime(deadline, r.clk.Now().Add(time.Second))) != nil {
			return
		}
	}
}

// evalAudit judges an audit expectation from the audits before and after.
func (r *run) evalAudit(o *Outcome) {
	before, after := r.auditBefore, r.auditAfter
	switch {
	case before == nil:
		o.Observed = "no audit before the drill"
		return
	case after == nil && r.auditErr != "":
		o.Observed = r.auditErr
		return
	case after == nil:
		o.Observed = "no audit after the drill: it did not get that far"
		return
	}
	var problems []string
	if !after.Settled {
		problems = append(problems, "not settled: "+strings.Join(after.Unsettled, ", "))
	}
	problems = append(problems, after.Problems...)
	was, is := before.totals(), after.totals()
	for sku, n := range was {
		if m, ok := is[sku]; !ok {
			problems = append(problems, fmt.Sprintf("SKU %d vanished (it had %d units)", sku, n))
		} else if m != n {
			problems = append(problems, fmt.Sprintf("SKU %d: stock + reserved + sold = %d; it was %d", sku, m, n))
		}
	}
	newOrders := after.count(after.Orders) - before.count(before.Orders)
	o.Value = float64(len(problems))
	o.Pass = len(problems) == 0
	o.Observed = fmt.Sprintf("%d orders placed during the drill (all orders now: %s), %d SKUs conserved", newOrders, stateText(after.Orders), len(was))
	if !o.Pass {
		const show = 5
		shown := problems[:min(len(problems), show)]
		o.Observed = fmt.Sprintf("%s: %s", plural(len(problems), "problem"), strings.Join(shown, "; "))
		if len(problems) > show {
			o.Observed += fmt.Sprintf("; and %d more", len(problems)-show)
		}
	}
}

// stateText renders counts by state: "PAID 12, CLOSED 3".
func stateText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
