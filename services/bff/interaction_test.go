package bff_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

type card struct {
	ID     string `json:"id"`
	Counts *struct {
		Likes    int64 `json:"likes"`
		Collects int64 `json:"collects"`
		Views    int64 `json:"views"`
	} `json:"counts"`
	Viewer *struct {
		Liked     bool `json:"liked"`
		Collected bool `json:"collected"`
	} `json:"viewer"`
	Author *struct {
		Username string `json:"username"`
	} `json:"author"`
	Degraded []string `json:"degraded"`
}

type cardPage struct {
	Notes    []card   `json:"notes"`
	Degraded []string `json:"degraded"`
}

func TestLikesCollectsAndCards(t *testing.T) {
	s := stacktest.Start(t, nil)
	alice, aliceID := stacktest.Session(t, s.BFF, "alice")
	bob, _ := stacktest.Session(t, s.BFF, "bob")
	r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "tea", "body": "oolong"}, "Authorization", alice)
	var n card
	r.JSON(t, &n)
	like := s.BFF + "/v1/notes/" + n.ID + "/like"

	for i, want := range []string{`"liked":true,"changed":true`, `"liked":true,"changed":false`} {
		if r := stacktest.Do(t, "PUT", like, nil, "Authorization", bob); r.Status != 200 || !strings.Contains(string(r.Body), want) {
			t.Fatalf("like #%d = %d %s; want %s", i, r.Status, r.Body, want)
		}
	}
	if r := stacktest.Do(t, "PUT", s.BFF+"/v1/notes/"+n.ID+"/collect", nil, "Authorization", alice); r.Status != 200 {
		t.Fatalf("collect = %d %s", r.Status, r.Body)
	}
	// Bob sees his like, the counters and the author; an anonymous reader gets no viewer part.
	r = stacktest.Do(t, "GET", s.BFF+"/v1/users/"+aliceID+"/notes", nil, "Authorization", bob)
	var p cardPage
	r.JSON(t, &p)
	if len(p.Notes) != 1 || p.Notes[0].Counts == nil || p.Notes[0].Counts.Likes != 1 || p.Notes[0].Counts.Collects != 1 ||
		p.Notes[0].Viewer == nil || !p.Notes[0].Viewer.Liked || p.Notes[0].Viewer.Collected ||
		p.Notes[0].Author == nil || p.Notes[0].Author.Username != "alice" {
		t.Fatalf("bob's page = %s; want one card with 1 like, 1 collect, liked by him, not collected, author alice", r.Body)
	}
	r = stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil)
	var one card
	r.JSON(t, &one)
	if one.Viewer != nil || one.Counts == nil || one.Counts.Likes != 1 {
		t.Fatalf("anonymous GET note = %s; want counts and no viewer", r.Body)
	}
	if r := stacktest.Do(t, "DELETE", like, nil, "Authorization", bob); r.Status != 200 || !strings.Contains(string(r.Body), `"liked":false,"changed":true`) {
		t.Fatalf("unlike = %d %s", r.Status, r.Body)
	}
	r = stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil, "Authorization", bob)
	r.JSON(t, &one)
	if one.Counts.Likes != 0 || one.Viewer == nil || one.Viewer.Liked || one.Counts.Views != 1 {
		t.Fatalf("after unlike = %s; want 0 likes, not liked, and the earlier read counted as one view (this read counts after it answers)", r.Body)
	}

	for _, tc := range []struct {
		method, url, auth string
		status            int
		reason            string
	}{
		{"PUT", like, "", http.StatusUnauthorized, "TOKEN_MISSING"},
		{"PUT", like, "Bearer v1.1.1.forged", http.StatusUnauthorized, ""},
		{"PUT", s.BFF + "/v1/notes/abc/like", bob, http.StatusBadRequest, "INVALID_ID"},
		{"PUT", s.BFF + "/v1/notes/404/like", bob, http.StatusNotFound, "NOTE_NOT_FOUND"},
		{"DELETE", s.BFF + "/v1/notes/404/collect", bob, http.StatusNotFound, "NOTE_NOT_FOUND"},
		{"GET", s.BFF + "/v1/notes/" + n.ID, "Bearer v1.1.1.forged", http.StatusUnauthorized, ""},
	} {
		var h []string
		if tc.auth != "" {
			h = []string{"Authorization", tc.auth}
		}
		r := stacktest.Do(t, tc.method, tc.url, nil, h...)
		if r.Status != tc.status || (tc.reason != "" && r.Reason() != tc.reason) {
			t.Errorf("%s %s = %d %s; want %d %s", tc.method, tc.url, r.Status, r.Body, tc.status, tc.reason)
		}
	}
}

func TestCardsDegradePartByPart(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.HA.Degrade.Forced = []string{"interaction"} })
	alice, aliceID := stacktest.Session(t, s.BFF, "alice")
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "tea"}, "Authorization", alice); r.Status != 201 {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	r := stacktest.Do(t, "GET", s.BFF+"/v1/users/"+aliceID+"/notes", nil, "Authorization", alice)
	var p cardPage
	r.JSON(t, &p)
	if r.Status != 200 || len(p.Notes) != 1 || p.Notes[0].Counts != nil || p.Notes[0].Author == nil ||
		strings.Join(p.Degraded, ",") != "counts,viewer" {
		t.Fatalf("page with interaction switched off = %d %s; want the note and its author, degraded counts,viewer", r.Status, r.Body)
	}
}
