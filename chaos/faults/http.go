package faults

import (
	"net/http"

	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// MaxBody bounds the body of POST /chaos/faults.
const MaxBody = 64 << 10

// Mux is where Register adds the admin API: the kit's admin server, or an http.ServeMux.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the admin API of r to mux (the admin server, behind its token):
//
//	GET    /chaos/faults       {"faults": [Fault...]}, in match order
//	POST   /chaos/faults       a Spec as JSON; 201 with the Fault, 400 naming the bad field
//	DELETE /chaos/faults/{id}  {"removed": 1}; 404 when no such fault is active
//	DELETE /chaos/faults       every fault: {"removed": N}
//	GET    /chaos/events       {"events": [Event...]}, oldest first
//
// Errors are the errs JSON body of the kit's HTTP transport.
func (r *Registry) Register(mux Mux) {
	mux.Handle("GET /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, map[string][]Fault{"faults": r.List()})
	}))
	mux.Handle("POST /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var s Spec
		if err := kithttp.DecodeJSON(req.Body, MaxBody, &s); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		f, err := r.Add(s)
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusCreated, f)
	}))
	mux.Handle("DELETE /chaos/faults/{id}", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.Remove(req.PathValue("id")); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, map[string]int{"removed": 1})
	}))
	mux.Handle("DELETE /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, map[string]int{"removed": r.Clear()})
	}))
	mux.Handle("GET /chaos/events", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, map[string][]Event{"events": r.Events()})
	}))
}
