package incident

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/alert"
)

// Register adds the incident API to s:
//
//	POST /v1/alerts/alertmanager          Alertmanager webhook (400 names the bad field)
//	POST /v1/incidents                     open one by hand
//	GET  /v1/incidents?open=1&service=X&limit=N
//	GET  /v1/incidents/{id}
//	POST /v1/incidents/{id}/ack            {"actor","text"}; also /mitigate and /resolve
//	GET  /v1/incidents/{id}/timeline
//	POST /v1/incidents/{id}/timeline       {"kind","actor","text"} a note, deploy or drill
//	PUT  /v1/incidents/{id}/roles          {"commander","communications","actor"}
//	POST /v1/incidents/{id}/todos          {"owner","text"}
//	GET  /v1/incidents/{id}/postmortem     {"markdown","published","author","published_at"}: the
//	                                       published postmortem, or else the draft
//	                                       (published false, no author, no published_at)
//	PUT  /v1/incidents/{id}/postmortem     {"author","markdown"} publishes it, once mitigated
//	                                       (412 before; 400 names missing headings); answers
//	                                       as GET does
//	GET  /v1/mttx?service=X&since=RFC3339&until=RFC3339
//
// Authentication is the server's middleware's business, not this package's.
func Register(s *kithttp.Server, store *Store, resp *Responder) {
	kithttp.Route(s, "POST /v1/alerts/alertmanager", func(ctx context.Context, in *webhookReq) (*incidentsResp, error) {
		wh, err := alert.ParseWebhook(in.body)
		if err != nil {
			return nil, err
		}
		incs, err := resp.HandleWebhook(ctx, wh)
		if err != nil {
			return nil, err
		}
		return &incidentsResp{Incidents: incs}, nil
	})
	kithttp.Route(s, "POST /v1/incidents", func(ctx context.Context, in *openReq) (*openResp, error) {
		inc, created, err := store.Trigger(ctx, Trigger{
			DedupKey: orDefault(in.DedupKey, "manual:"+newID(store.now())),
			Title:    in.Title, Service: in.Service, Severity: in.Severity, Policy: in.Policy,
			Actor: in.Actor, Text: in.Text, ImpactStart: in.ImpactStart,
		})
		if err != nil {
			return nil, err
		}
		if created && in.Policy != "" && resp.esc != nil {
			resp.esc.Wake()
		}
		return &openResp{Incident: inc, created: created}, nil
	})
	kithttp.Route(s, "GET /v1/incidents", func(ctx context.Context, in *listReq) (*incidentsResp, error) {
		list, err := store.List(ctx, in.f)
		if err != nil {
			return nil, err
		}
		out := make([]*Incident, len(list))
		for i := range list {
			out[i] = &list[i]
		}
		return &incidentsResp{Incidents: out}, nil
	})
	kithttp.Route(s, "GET /v1/incidents/{id}", func(ctx context.Context, in *idReq) (*Incident, error) {
		return store.Get(ctx, in.id)
	})
	for verb, fn := range map[string]func(context.Context, string, string, string) (*Incident, error){
		"ack": store.Acknowledge, "mitigate": store.Mitigate, "resolve": store.Resolve,
	} {
		kithttp.Route(s, "POST /v1/incidents/{id}/"+verb, func(ctx context.Context, in *actReq) (*Incident, error) {
			return fn(ctx, in.id, in.Actor, in.Text)
		})
	}
	kithttp.Route(s, "GET /v1/incidents/{id}/timeline", func(ctx context.Context, in *idReq) (*timelineResp, error) {
		if _, err := store.Get(ctx, in.id); err != nil {
			return nil, err
		}
		tl, err := store.Timeline(ctx, in.id)
		if err != nil {
			return nil, err
		}
		return &timelineResp{Entries: tl}, nil
	})
	kithttp.Route(s, "POST /v1/incidents/{id}/timeline", func(ctx context.Context, in *entryReq) (*Entry, error) {
		e, err := store.AddEntry(ctx, in.id, Entry{Kind: in.Kind, Actor: in.Actor, Text: in.Text, At: in.At})
		if err != nil {
			return nil, err
		}
		return &e, nil
	})
	kithttp.Route(s, "PUT /v1/incidents/{id}/roles", func(ctx context.Context, in *rolesReq) (*Incident, error) {
		return store.SetRoles(ctx, in.id, Roles{Commander: in.Commander, Communications: in.Communications}, in.Actor)
	})
	kithttp.Route(s, "POST /v1/incidents/{id}/todos", func(ctx context.Context, in *todoReq) (*Todo, error) {
		t, err := store.AddTodo(ctx, in.id, in.Owner, in.Text)
		if err != nil {
			return nil, err
		}
		return &t, nil
	})
	kithttp.Route(s, "GET /v1/incidents/{id}/postmortem", func(ctx context.Context, in *idReq) (*postmortemResp, error) {
		md, author, at, err := store.PublishedPostmortem(ctx, in.id)
		if errors.Is(err, ErrNoPostmortem) {
			md, err = store.Postmortem(ctx, in.id)
			if err != nil {
				return nil, err
			}
			return &postmortemResp{Markdown: md}, nil
		}
		if err != nil {
			return nil, err
		}
		return &postmortemResp{Markdown: md, Published: true, Author: author, PublishedAt: at}, nil
	})
	kithttp.Route(s, "PUT /v1/incidents/{id}/postmortem", func(ctx context.Context, in *publishReq) (*postmortemResp, error) {
		inc, err := store.PublishPostmortem(ctx, in.id, in.Author, in.Markdown)
		if err != nil {
			return nil, err
		}
		return &postmortemResp{Markdown: in.Markdown, Published: true, Author: strings.TrimSpace(in.Author), PublishedAt: inc.PostmortemAt}, nil
	})
	kithttp.Route(s, "GET /v1/mttx", func(ctx context.Context, in *listReq) (*MTTx, error) {
		m, err := store.MTTx(ctx, in.f)
		if err != nil {
			return nil, err
		}
		return &m, nil
	})
}

type webhookReq struct{ body []byte }

func (r *webhookReq) SetRaw(b []byte) { r.body = b }

type incidentsResp struct {
	Incidents []*Incident `json:"incidents"`
}

type openReq struct {
	Title       string    `json:"title"`
	Service     string    `json:"service"`
	Severity    Severity  `json:"severity"`
	DedupKey    string    `json:"dedup_key"`
	Policy      string    `json:"policy"`
	Actor       string    `json:"actor"`
	Text        string    `json:"text"`
	ImpactStart time.Time `json:"impact_start"`
}

type openResp struct {
	*Incident
	created bool
}

func (r *openResp) Created() bool { return r.created }

type idReq struct{ id string }

func (r *idReq) Bind(req *http.Request) error {
	r.id = req.PathValue("id")
	return nil
}

type actReq struct {
	idReq
	Actor string `json:"actor"`
	Text  string `json:"text"`
}

// Bodiless lets ack, mitigate and resolve be posted without a body.
func (actReq) Bodiless() {}

type entryReq struct {
	idReq
	Kind  Kind      `json:"kind"`
	Actor string    `json:"actor"`
	Text  string    `json:"text"`
	At    time.Time `json:"at"`
}

type rolesReq struct {
	idReq
	Commander      string `json:"commander"`
	Communications string `json:"communications"`
	Actor          string `json:"actor"`
}

type todoReq struct {
	idReq
	Owner string `json:"owner"`
	Text  string `json:"text"`
}

type timelineResp struct {
	Entries []Entry `json:"entries"`
}

type publishReq struct {
	idReq
	Author   string `json:"author"`
	Markdown string `json:"markdown"`
}

type postmortemResp struct {
	Markdown    string    `json:"markdown"`
	Published   bool      `json:"published"`
	Author      string    `json:"author"`
	PublishedAt time.Time `json:"published_at,omitzero"`
}

type listReq struct{ f Filter }

func (r *listReq) Bind(req *http.Request) error {
	q := req.URL.Query()
	r.f.Service = q.Get("service")
	r.f.OpenOnly = q.Get("open") == "1" || q.Get("open") == "true"
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errs.InvalidArgument(errs.ReasonInvalidArgument, "limit: %q is not a non-negative integer", v)
		}
		r.f.Limit = n
	}
	for name, dst := range map[string]*time.Time{"since": &r.f.Since, "until": &r.f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errs.InvalidArgument(errs.ReasonInvalidArgument, "%s: %q is not an RFC 3339 time", name, v)
			}
			*dst = t
		}
	}
	return nil
}
