// Package biz holds the product service's rules: what an SPU and its SKUs may contain,
// product events written to an outbox in the same transaction as the change and relayed to
// the queue, and each user's cart. It owns the repository interfaces that data implements.
package biz

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/page"
	"github.com/redline-dev/redline/services/event"
)

// Limits of a product.
const (
	MaxTitle       = 200
	MaxDescription = 5000
	MaxTags        = 10
	MaxTagLen      = 32
	MaxSKUs        = 50
	MaxAttributes  = 10
	MaxAttrKey     = 32
	MaxAttrValue   = 64
	MaxPrice       = 1_000_000_000_000
	MaxGetSKUs     = 100
	MaxIdemKey     = 128
	cursorKind     = "p1"
	// updateRounds bounds the optimistic retries of an update that lost to another.
	updateRounds = 3
)

// SKU is a variant of an SPU: what is priced and bought.
type SKU struct {
	ID    int64
	SPUID int64
	// Title is the SPU's title, filled on reads.
	Title      string
	Attributes map[string]string
	Price      int64
	Currency   string
}

// SPU is a product as a shopper sees it, with its SKUs in creation order.
type SPU struct {
	ID          int64
	Title       string
	Description string
	Tags        []string
	SKUs        []SKU
	// MinPrice is the lowest SKU price, in Currency, which every SKU shares.
	MinPrice  int64
	Currency  string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the UpdatedAt milliseconds of the last change, made strictly increasing, so
	// event consumers can drop a stale update; updates also use it for optimistic locking.
	Version int64
	// IdempotencyKey makes creation safe to repeat; "" for none.
	IdempotencyKey string
}

// Outbound is an event to publish once its transaction commits.
type Outbound struct {
	Subject string
	Payload []byte
}

// Repo stores products. A non-nil Outbound is written to the outbox in the same
// transaction as the change it describes.
type Repo interface {
	// Create stores p with its SKUs. When p.IdempotencyKey is already used it stores
	// nothing, writes no event, and returns the product created with it.
	Create(ctx context.Context, p *SPU, ev *Outbound) (*SPU, error)
	// Get returns a product that is not deleted; ErrNotFound otherwise.
	Get(ctx context.Context, id int64) (*SPU, error)
	// List returns up to limit products with id < before that are not deleted, newest first.
	List(ctx context.Context, before int64, limit int) ([]*SPU, error)
	// Update stores p's title, description, tags, SKU prices, MinPrice, UpdatedAt and
	// Version if the stored product is not deleted and still has version prev; false when
	// it changed or was deleted meanwhile.
	Update(ctx context.Context, p *SPU, prev int64, ev *Outbound) (bool, error)
	// Head returns a product's version and whether it is deleted; ErrNotFound when it never
	// existed.
	Head(ctx context.Context, id int64) (version int64, deleted bool, err error)
	// Delete hides a product, stamping it with at and version, if it is not deleted and
	// still has version prev; false otherwise.
	Delete(ctx context.Context, id, prev int64, at time.Time, version int64, ev *Outbound) (bool, error)
	// GetSKUs returns the SKUs among ids that exist and whose SPU is not deleted, keyed by id.
	GetSKUs(ctx context.Context, ids []int64) (map[int64]SKU, error)
}

// Errors callers branch on.
var (
	ErrNotFound       = errs.NotFound("PRODUCT_NOT_FOUND", "no such product")
	ErrSKUNotFound    = errs.NotFound("SKU_NOT_FOUND", "no such sku")
	ErrBadCursor      = page.ErrBadCursor
	ErrUpdateConflict = errs.New(codes.Aborted, "UPDATE_CONFLICT", "the product changed during the update: try again")
)

func invalid(reason, format string, args ...any) *errs.Error {
	return errs.InvalidArgument(reason, format, args...)
}

var (
	attrKey  = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	currency = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidateMoney checks a price and its currency.
func ValidateMoney(price int64, cur string) error {
	if price < 0 || price > MaxPrice {
		return invalid("INVALID_PRICE", "price must be 0 to %d minor units", int64(MaxPrice))
	}
	if !currency.MatchString(cur) {
		return invalid("INVALID_CURRENCY", "currency must be an ISO 4217 code of three upper-case letters")
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// ValidateAttributes checks a SKU's attributes and returns their canonical form
// ("color=red,size=M", keys sorted), which tells two SKUs of an SPU apart.
func ValidateAttributes(attrs map[string]string) (string, error) {
	if len(attrs) > MaxAttributes {
		return "", invalid("INVALID_ATTRIBUTES", "at most %d attributes", MaxAttributes)
	}
	keys := slices.Sorted(maps.Keys(attrs))
	var b strings.Builder
	for i, k := range keys {
		v := attrs[k]
		if !attrKey.MatchString(k) {
			return "", invalid("INVALID_ATTRIBUTES", "attribute names are 1 to %d of a-z, 0-9 and _", MaxAttrKey)
		}
		if v == "" || utf8.RuneCountInString(v) > MaxAttrValue || !printable(v) {
			return "", invalid("INVALID_ATTRIBUTES", "attribute %s: value must be 1 to %d printable characters", k, MaxAttrValue)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return b.String(), nil
}

// validateText checks the title, description and tags and returns the tags trimmed and
// without repeats.
func validateText(title, description string, tags []string) ([]string, error) {
	switch {
	case strings.TrimSpace(title) == "" || utf8.RuneCountInString(title) > MaxTitle || !printable(title):
		return nil, invalid("INVALID_TITLE", "title must be 1 to %d printable characters", MaxTitle)
	case utf8.RuneCountInString(description) > MaxDescription || !utf8.ValidString(description):
		return nil, invalid("INVALID_DESCRIPTION", "description must be at most %d characters", MaxDescription)
	case len(tags) > MaxTags:
		return nil, invalid("INVALID_TAGS", "at most %d tags", MaxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || utf8.RuneCountInString(t) > MaxTagLen || !printable(t) || strings.ContainsFunc(t, unicode.IsSpace) {
			return nil, invalid("INVALID_TAGS", "tags are 1 to %d printable characters without blanks", MaxTagLen)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Validate checks a product to be created and normalizes it: title trimmed, tags trimmed
// without repeats, MinPrice and Currency set from the SKUs. It does not change p on error.
func (p *SPU) Validate() error {
	tags, err := validateText(p.Title, p.Description, p.Tags)
	if err != nil {
		return err
	}
	switch {
	case len(p.SKUs) == 0:
		return invalid("NO_SKUS", "a product needs at least one sku")
	case len(p.SKUs) > MaxSKUs:
		return invalid("TOO_MANY_SKUS", "at most %d skus", MaxSKUs)
	case len(p.IdempotencyKey) > MaxIdemKey || !printable(p.IdempotencyKey):
		return invalid("INVALID_IDEMPOTENCY_KEY", "idempotency_key must be at most %d printable bytes", MaxIdemKey)
	}
	seen := make(map[string]bool, len(p.SKUs))
	minPrice := int64(-1)
	for i, s := range p.SKUs {
		canon, err := ValidateAttributes(s.Attributes)
		if err != nil {
			return errs.From(err).WithMetadata("sku_index", strconv.Itoa(i))
		}
		if seen[canon] {
			return invalid("DUPLICATE_ATTRIBUTES", "two skus have the attributes %q", canon).WithMetadata("sku_index", strconv.Itoa(i))
		}
		seen[canon] = true
		if err := ValidateMoney(s.Price, s.Currency); err != nil {
			return errs.From(err).WithMetadata("sku_index", strconv.Itoa(i))
		}
		if s.Currency != p.SKUs[0].Currency {
			return invalid("MIXED_CURRENCY", "every sku of a product has the same currency")
		}
		if minPrice < 0 || s.Price < minPrice {
			minPrice = s.Price
		}
	}
	p.Title = strings.TrimSpace(p.Title)
	p.Tags = tags
	p.MinPrice, p.Currency = minPrice, p.SKUs[0].Currency
	return nil
}

// Usecase is the product catalog's logic.
type Usecase struct {
	repo   Repo
	clock  clock.Clock
	events bool
	kick   func()
}

// NewUsecase returns the logic over repo. With events, every change writes a ProductEvent
// to the outbox and then calls kick (which may be nil) so the relay publishes it soon.
func NewUsecase(repo Repo, c clock.Clock, events bool, kick func()) *Usecase {
	if kick == nil {
		kick = func() {}
	}
	return &Usecase{repo: repo, clock: c, events: events, kick: kick}
}

func (uc *Usecase) now() time.Time { return uc.clock.Now().UTC().Truncate(time.Millisecond) }

// outbound encodes e for the outbox, or returns nil when events are off.
func (uc *Usecase) outbound(e event.ProductEvent) (*Outbound, error) {
	if !uc.events {
		return nil, nil
	}
	b, err := event.Encode(e)
	if err != nil {
		return nil, errs.Internal(err)
	}
	return &Outbound{Subject: event.Product, Payload: b}, nil
}

func changed(op event.Op, p *SPU) event.ProductEvent {
	return event.ProductEvent{Op: op, ID: p.ID, Title: p.Title, Description: p.Description,
		MinPrice: p.MinPrice, Currency: p.Currency, Version: p.Version}
}

// Create validates and stores a product with its SKUs.
func (uc *Usecase) Create(ctx context.Context, p *SPU) (*SPU, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	now := uc.now()
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id.New(), now, now, now.UnixMilli()
	for i := range p.SKUs {
		p.SKUs[i].ID, p.SKUs[i].SPUID, p.SKUs[i].Title = id.New(), p.ID, p.Title
	}
	ev, err := uc.outbound(changed(event.Created, p))
	if err != nil {
		return nil, err
	}
	got, err := uc.repo.Create(ctx, p, ev)
	if err != nil {
		return nil, err
	}
	if got.ID == p.ID {
		uc.kick()
	}
	return got, nil
}

// Get returns a product that is not deleted.
func (uc *Usecase) Get(ctx context.Context, spuID int64) (*SPU, error) {
	if spuID <= 0 {
		return nil, invalid("INVALID_PRODUCT_ID", "spu_id must be positive")
	}
	return uc.repo.Get(ctx, spuID)
}

// List returns a page of the catalog, newest first, and the cursor of the next page ("" at
// the end).
func (uc *Usecase) List(ctx context.Context, pageSize int, cursor string) ([]*SPU, string, error) {
	pageSize = page.Size(pageSize)
	before, err := page.Decode(cursorKind, cursor)
	if err != nil {
		return nil, "", err
	}
	// One extra row tells whether a next page exists without a second query.
	out, err := uc.repo.List(ctx, before, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > pageSize {
		out = out[:pageSize]
		next = page.Encode(cursorKind, out[len(out)-1].ID)
	}
	return out, next, nil
}

// Update replaces a product's title, description and tags and sets the prices of some of
// its SKUs. It retries a few times when a concurrent update wins, then gives up with
// ErrUpdateConflict.
func (uc *Usecase) Update(ctx context.Context, spuID int64, title, description string, tags []string, prices map[int64]int64) (*SPU, error) {
	tags, err := validateText(title, description, tags)
	if err != nil {
		return nil, err
	}
	for range updateRounds {
		cur, err := uc.Get(ctx, spuID)
		if err != nil {
			return nil, err
		}
		next := *cur
		next.Title, next.Description, next.Tags = strings.TrimSpace(title), description, tags
		next.SKUs = slices.Clone(cur.SKUs)
		left := len(prices)
		for i, s := range next.SKUs {
			if price, ok := prices[s.ID]; ok {
				if err := ValidateMoney(price, s.Currency); err != nil {
					return nil, errs.From(err).WithMetadata("sku_id", strconv.FormatInt(s.ID, 10))
				}
				next.SKUs[i].Price = price
				left--
			}
			next.SKUs[i].Title = next.Title
		}
		if left > 0 {
			return nil, invalid("SKU_NOT_IN_PRODUCT", "prices name a sku that is not one of product %d", spuID)
		}
		next.MinPrice = next.SKUs[0].Price
		for _, s := range next.SKUs {
			next.MinPrice = min(next.MinPrice, s.Price)
		}
		next.UpdatedAt = uc.now()
		next.Version = max(next.UpdatedAt.UnixMilli(), cur.Version+1)
		ev, err := uc.outbound(changed(event.Updated, &next))
		if err != nil {
			return nil, err
		}
		ok, err := uc.repo.Update(ctx, &next, cur.Version, ev)
		if err != nil {
			return nil, err
		}
		if ok {
			uc.kick()
			return &next, nil
		}
	}
	return nil, ErrUpdateConflict
}

// Delete hides a product; false when it already was.
func (uc *Usecase) Delete(ctx context.Context, spuID int64) (bool, error) {
	if spuID <= 0 {
		return false, invalid("INVALID_PRODUCT_ID", "spu_id must be positive")
	}
	for range updateRounds {
		prev, deleted, err := uc.repo.Head(ctx, spuID)
		if err != nil || deleted {
			return false, err
		}
		now := uc.now()
		version := max(now.UnixMilli(), prev+1)
		ev, err := uc.outbound(event.ProductEvent{Op: event.Deleted, ID: spuID, Version: version})
		if err != nil {
			return false, err
		}
		ok, err := uc.repo.Delete(ctx, spuID, prev, now, version, ev)
		if err != nil {
			return false, err
		}
		if ok {
			uc.kick()
			return true, nil
		}
	}
	return false, ErrUpdateConflict
}

// ValidateSKUIDs checks the ids of a batch call: 1..MaxGetSKUs ids, each positive.
func ValidateSKUIDs(ids []int64) error {
	switch {
	case len(ids) == 0:
		return invalid("NO_SKUS", "sku_ids is empty")
	case len(ids) > MaxGetSKUs:
		return invalid("TOO_MANY_SKUS", "at most %d sku_ids", MaxGetSKUs)
	}
	for _, s := range ids {
		if s <= 0 {
			return invalid("INVALID_SKU_ID", "sku ids must be positive")
		}
	}
	return nil
}

// GetSKUs returns the SKUs of ids that exist, in request order, and the ids that do not.
func (uc *Usecase) GetSKUs(ctx context.Context, ids []int64) ([]SKU, []int64, error) {
	if err := ValidateSKUIDs(ids); err != nil {
		return nil, nil, err
	}
	found, err := uc.repo.GetSKUs(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]SKU, 0, len(ids))
	var missing []int64
	for _, s := range ids {
		if k, ok := found[s]; ok {
			out = append(out, k)
		} else {
			missing = append(missing, s)
		}
	}
	return out, missing, nil
}
