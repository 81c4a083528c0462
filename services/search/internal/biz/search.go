// Package biz holds the search service's rules: how text becomes terms, what a query may
// contain, how pages are cut, and how note and product events become indexed documents, a
// newer version always winning. It owns the repository interface that data implements.
package biz

import (
	"context"
	"encoding/base64"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/page"
	"github.com/redline-dev/redline/services/event"
)

// Kind is what a document is.
type Kind string

// Kinds. KindAll searches both.
const (
	KindAll     Kind = ""
	KindNote    Kind = "note"
	KindProduct Kind = "product"
)

// Limits of a query and of a stored document.
const (
	MaxQueryRunes = 100
	// MaxTitle is how many characters of a title a hit carries.
	MaxTitle   = 200
	cursorKind = "s1"
)

// Errors callers branch on.
var (
	ErrInvalidQuery = errs.InvalidArgument("INVALID_QUERY", "q must be 1 to %d characters of UTF-8", MaxQueryRunes)
	ErrNoTerms      = errs.InvalidArgument("NO_TERMS", "q has no letter or digit to search for")
	ErrInvalidKind  = errs.InvalidArgument("INVALID_KIND", "kind must be note, product or unspecified (all)")
	ErrBadCursor    = page.ErrBadCursor
	// ErrBadEvent marks an event that can never be indexed (no id, no version, unknown op):
	// the consumer acknowledges and counts it rather than retrying it.
	ErrBadEvent = errs.InvalidArgument("BAD_EVENT", "event cannot be indexed")
)

// Doc is a document as indexed: a note or a product at one version, or its tombstone.
type Doc struct {
	Kind     Kind
	ID       int64
	Version  int64
	Deleted  bool
	Title    string
	AuthorID int64
	MinPrice int64
	Currency string
	// RecencyMS breaks ties of score, newer first: a note's creation, a product's change.
	RecencyMS int64
	// Terms are the document's terms and weights; none for a tombstone.
	Terms map[string]int
}

// Position is where a page ends in the order score, recency, kind, id, all descending.
type Position struct {
	Score     int64
	RecencyMS int64
	Kind      Kind
	ID        int64
}

// Query is a validated search.
type Query struct {
	// Terms are distinct and sorted; a hit contains all of them.
	Terms []string
	Kind  Kind
	// After is the position the page starts after; nil for the first page.
	After *Position
	Limit int
}

// Hit is a document found, with its score.
type Hit struct {
	Kind      Kind
	ID        int64
	Title     string
	AuthorID  int64
	MinPrice  int64
	Currency  string
	RecencyMS int64
	Score     int64
}

func (h Hit) position() Position {
	return Position{Score: h.Score, RecencyMS: h.RecencyMS, Kind: h.Kind, ID: h.ID}
}

// Repo stores the index.
type Repo interface {
	// Apply stores d, replacing the document's terms, when d.Version is newer than the
	// version stored for (d.Kind, d.ID), tombstones included, and reports whether it did.
	// It is atomic: readers see the old document or the new one.
	Apply(ctx context.Context, d *Doc) (bool, error)
	// Search returns up to q.Limit live documents holding every term of q, of q.Kind unless
	// it is KindAll, after q.After, ordered by score, recency, kind and id, all descending.
	Search(ctx context.Context, q Query) ([]Hit, error)
}

// Usecase is the search service's logic.
type Usecase struct{ repo Repo }

// NewUsecase returns the logic over repo.
func NewUsecase(repo Repo) *Usecase { return &Usecase{repo: repo} }

// ParseQuery validates a search request and turns it into a Query of page.Size(pageSize)
// hits. kind must be KindAll, KindNote or KindProduct.
func ParseQuery(q string, kind Kind, pageSize int, cursor string) (Query, error) {
	if q == "" || !utf8.ValidString(q) || utf8.RuneCountInString(q) > MaxQueryRunes {
		return Query{}, ErrInvalidQuery
	}
	switch kind {
	case KindAll, KindNote, KindProduct:
	default:
		return Query{}, ErrInvalidKind
	}
	terms := QueryTerms(q)
	if len(terms) == 0 {
		return Query{}, ErrNoTerms
	}
	out := Query{Terms: terms, Kind: kind, Limit: page.Size(pageSize)}
	if cursor != "" {
		pos, err := DecodeCursor(fingerprint(terms, kind), cursor)
		if err != nil {
			return Query{}, err
		}
		out.After = &pos
	}
	return out, nil
}

// Search runs a query and returns a page of hits and the cursor of the next page ("" at the
// end).
func (uc *Usecase) Search(ctx context.Context, q string, kind Kind, pageSize int, cursor string) ([]Hit, string, error) {
	query, err := ParseQuery(q, kind, pageSize, cursor)
	if err != nil {
		return nil, "", err
	}
	limit := query.Limit
	query.Limit++ // one more tells whether there is a next page
	hits, err := uc.repo.Search(ctx, query)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(hits) > limit {
		hits = hits[:limit]
		next = EncodeCursor(fingerprint(query.Terms, kind), hits[limit-1].position())
	}
	return hits, next, nil
}

// fingerprint identifies a query's terms and kind, so a cursor of one query is refused by
// another instead of skipping into the middle of unrelated results.
func fingerprint(terms []string, kind Kind) uint32 {
	h := fnv.New32a()
	h.Write([]byte(kind))
	for _, t := range terms {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return h.Sum32()
}

var kindCode = map[Kind]string{KindNote: "n", KindProduct: "p"}

// EncodeCursor makes the opaque cursor that resumes after pos in the query fingerprinted fp.
func EncodeCursor(fp uint32, pos Position) string {
	raw := strings.Join([]string{cursorKind, strconv.FormatUint(uint64(fp), 16), strconv.FormatInt(pos.Score, 10),
		strconv.FormatInt(pos.RecencyMS, 10), kindCode[pos.Kind], strconv.FormatInt(pos.ID, 10)}, ":")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor reads a cursor made by EncodeCursor for the query fingerprinted fp; anything
// else is ErrBadCursor.
func DecodeCursor(fp uint32, c string) (Position, error) {
	if len(c) > 128 {
		return Position{}, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return Position{}, ErrBadCursor
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 6 || parts[0] != cursorKind || parts[1] != strconv.FormatUint(uint64(fp), 16) {
		return Position{}, ErrBadCursor
	}
	var pos Position
	switch parts[4] {
	case "n":
		pos.Kind = KindNote
	case "p":
		pos.Kind = KindProduct
	default:
		return Position{}, ErrBadCursor
	}
	if pos.Score, err = strconv.ParseInt(parts[2], 10, 64); err != nil || pos.Score <= 0 {
		return Position{}, ErrBadCursor
	}
	if pos.RecencyMS, err = strconv.ParseInt(parts[3], 10, 64); err != nil {
		return Position{}, ErrBadCursor
	}
	if pos.ID, err = strconv.ParseInt(parts[5], 10, 64); err != nil || pos.ID <= 0 {
		return Position{}, ErrBadCursor
	}
	return pos, nil
}

// Outcome is what became of an event.
type Outcome int

// Outcomes.
const (
	// Applied: the event was newer than what the index held, and now the index holds it.
	Applied Outcome = iota
	// Stale: the index already held this version or a newer one (a redelivery, or an older
	// event arriving late); nothing changed.
	Stale
)

func validEvent(op event.Op, id, version int64) error {
	switch {
	case op != event.Created && op != event.Updated && op != event.Deleted:
		return ErrBadEvent.WithMetadata("why", "unknown op "+strconv.Quote(string(op)))
	case id <= 0:
		return ErrBadEvent.WithMetadata("why", "id must be positive")
	case version <= 0:
		return ErrBadEvent.WithMetadata("why", "version must be positive")
	}
	return nil
}

// NoteDoc validates a note event and returns the document it makes; ErrBadEvent when it can
// never be indexed.
func NoteDoc(ev event.NoteEvent) (*Doc, error) {
	if err := validEvent(ev.Op, ev.ID, ev.Version); err != nil {
		return nil, err
	}
	d := &Doc{Kind: KindNote, ID: ev.ID, Version: ev.Version, Deleted: ev.Op == event.Deleted,
		AuthorID: ev.AuthorID, RecencyMS: ev.CreatedMS}
	if d.RecencyMS <= 0 {
		d.RecencyMS = ev.Version
	}
	if d.Deleted {
		return d, nil
	}
	d.Title = truncate(ev.Title, MaxTitle)
	fields := []Field{{ev.Title, 2}, {truncate(ev.Body, MaxIndexedBody), 1}}
	for _, tag := range ev.Tags {
		fields = append(fields, Field{tag, 2})
	}
	d.Terms = IndexTerms(fields...)
	return d, nil
}

// ProductDoc validates a product event and returns the document it makes; ErrBadEvent when
// it can never be indexed.
func ProductDoc(ev event.ProductEvent) (*Doc, error) {
	if err := validEvent(ev.Op, ev.ID, ev.Version); err != nil {
		return nil, err
	}
	d := &Doc{Kind: KindProduct, ID: ev.ID, Version: ev.Version, Deleted: ev.Op == event.Deleted,
		RecencyMS: ev.Version}
	if d.Deleted {
		return d, nil
	}
	d.Title, d.MinPrice, d.Currency = truncate(ev.Title, MaxTitle), ev.MinPrice, truncate(ev.Currency, 8)
	d.Terms = IndexTerms(Field{ev.Title, 2}, Field{truncate(ev.Description, MaxIndexedBody), 1})
	return d, nil
}

// Apply indexes d unless the index already holds its version or a newer one.
func (uc *Usecase) Apply(ctx context.Context, d *Doc) (Outcome, error) {
	ok, err := uc.repo.Apply(ctx, d)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return Stale, nil
	}
	return Applied, nil
}
