package netfault

import (
	"net/http"

	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// Mux is where Register adds the admin API: the kit's admin server, or an http.ServeMux.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the admin API of p to mux (the admin server, behind its token):
//
//	GET    /chaos/net                        {"proxies": [Proxy...]}, by name
//	POST   /chaos/net/toxics                 a ToxicSpec; 201 with the Toxic, 400 naming the bad field
//	DELETE /chaos/net/toxics/{id}            {"removed": 1}; 404 when no such toxic is active
//	POST   /chaos/net/proxies/{name}/disable an optional OutageSpec ({"ttl": "30s"}); 200 with the Proxy
//	POST   /chaos/net/proxies/{name}/enable  200 with the Proxy
//	DELETE /chaos/net                        every toxic removed, every proxy enabled: {"removed": N, "enabled": M}
//
// Errors are the errs JSON body of the kit's HTTP transport.
func (p *Proxies) Register(mux Mux) {
	mux.Handle("GET /chaos/net", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, map[string][]Proxy{"proxies": p.List()})
	}))
	mux.Handle("POST /chaos/net/toxics", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var s ToxicSpec
		if err := kithttp.DecodeJSON(req.Body, MaxBody, &s); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		t, err := p.AddToxic(s)
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusCreated, t)
	}))
	mux.Handle("DELETE /chaos/net/toxics/{id}", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := p.RemoveToxic(req.PathValue("id")); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, map[string]int{"removed": 1})
	}))
	mux.Handle("POST /chaos/net/proxies/{name}/disable", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var s OutageSpec
		if err := kithttp.DecodeOptionalJSON(req.Body, MaxBody, &s); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		v, err := p.Disable(req.PathValue("name"), s)
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, v)
	}))
	mux.Handle("POST /chaos/net/proxies/{name}/enable", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		v, err := p.Enable(req.PathValue("name"))
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, v)
	}))
	mux.Handle("DELETE /chaos/net", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		removed, enabled, err := p.Reset()
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, map[string]int{"removed": removed, "enabled": enabled})
	}))
}
