package biz

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidateAttributes(t *testing.T) {
	tests := []struct {
		in     map[string]string
		canon  string
		reason string
	}{
		{nil, "", ""},
		{map[string]string{"size": "M", "color": "red"}, "color=red,size=M", ""},
		{map[string]string{"a_1": strings.Repeat("é", MaxAttrValue)}, "a_1=" + strings.Repeat("é", MaxAttrValue), ""},
		{map[string]string{"Color": "red"}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{"": "red"}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{strings.Repeat("k", MaxAttrKey+1): "x"}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{"k": ""}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{"k": "a\nb"}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{"k": "\xff"}, "", "INVALID_ATTRIBUTES"},
		{map[string]string{"k": strings.Repeat("x", MaxAttrValue+1)}, "", "INVALID_ATTRIBUTES"},
	}
	for _, tt := range tests {
		canon, err := ValidateAttributes(tt.in)
		if errs.Reason(err) != tt.reason || canon != tt.canon {
			t.Errorf("ValidateAttributes(%v) = %q, %v; want %q, reason %q", tt.in, canon, err, tt.canon, tt.reason)
		}
	}
}

func TestValidateMoney(t *testing.T) {
	tests := []struct {
		price  int64
		cur    string
		reason string
	}{
		{0, "USD", ""}, {MaxPrice, "CNY", ""}, {-1, "USD", "INVALID_PRICE"}, {MaxPrice + 1, "USD", "INVALID_PRICE"},
		{1, "usd", "INVALID_CURRENCY"}, {1, "US", "INVALID_CURRENCY"}, {1, "USDD", "INVALID_CURRENCY"}, {1, "", "INVALID_CURRENCY"},
	}
	for _, tt := range tests {
		if got := errs.Reason(ValidateMoney(tt.price, tt.cur)); got != tt.reason {
			t.Errorf("ValidateMoney(%d, %q) reason = %q; want %q", tt.price, tt.cur, got, tt.reason)
		}
	}
}

var productReasons = []string{"INVALID_TITLE", "INVALID_DESCRIPTION", "INVALID_TAGS", "NO_SKUS", "TOO_MANY_SKUS",
	"INVALID_IDEMPOTENCY_KEY", "INVALID_ATTRIBUTES", "DUPLICATE_ATTRIBUTES", "INVALID_PRICE", "INVALID_CURRENCY",
	"MIXED_CURRENCY"}

// FuzzValidateProduct builds a product from the fuzzer's strings (SKUs from raw: each five
// bytes make an attribute value, a price near the bounds and a pick of currency) and checks
// that Validate either accepts it with every documented bound holding and MinPrice and
// Currency right, or rejects it with InvalidArgument and a known reason, leaving it unchanged.
func FuzzValidateProduct(f *testing.F) {
	f.Add("T-shirt", "cotton", "tee,summer", "k", []byte{1, 0, 0, 7, 0, 2, 0, 0, 9, 0})
	f.Add(" ", "", "", "", []byte{})
	f.Add("x", "y", "a b,,c", "\x00", []byte{1, 255, 255, 255, 1})
	f.Add(strings.Repeat("x", 201), "d", "t", "", []byte{0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, title, description, tags, key string, raw []byte) {
		currencies := []string{"USD", "EUR", "usd", "US"}
		p := &SPU{Title: title, Description: description, IdempotencyKey: key}
		if tags != "" {
			p.Tags = strings.Split(tags, ",")
		}
		for i := 0; i+4 < len(raw); i += 5 {
			price := int64(raw[i+1])<<40 | int64(raw[i+2])<<8 | int64(raw[i+3])
			if raw[i+1] == 255 {
				price = -price
			}
			attrs := map[string]string{}
			if raw[i] != 0 {
				attrs["v"] = string(rune(raw[i]))
			}
			p.SKUs = append(p.SKUs, SKU{Attributes: attrs, Price: price, Currency: currencies[int(raw[i+4])%len(currencies)]})
		}
		before := *p
		before.Tags, before.SKUs = slices.Clone(p.Tags), slices.Clone(p.SKUs)
		err := p.Validate()
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument || !slices.Contains(productReasons, errs.Reason(err)) {
				t.Fatalf("Validate = %v; want InvalidArgument with a known reason", err)
			}
			if p.Title != before.Title || !slices.Equal(p.Tags, before.Tags) || p.MinPrice != 0 {
				t.Fatalf("a failed Validate changed the product: %+v -> %+v", before, p)
			}
			return
		}
		switch {
		case strings.TrimSpace(p.Title) == "" || utf8.RuneCountInString(p.Title) > MaxTitle || !utf8.ValidString(p.Title):
			t.Fatalf("accepted title %q", p.Title)
		case len(p.Tags) > MaxTags || len(p.SKUs) == 0 || len(p.SKUs) > MaxSKUs || len(key) > MaxIdemKey:
			t.Fatalf("accepted %d tags, %d skus, key of %d bytes", len(p.Tags), len(p.SKUs), len(key))
		}
		minPrice := p.SKUs[0].Price
		seen := map[string]bool{}
		for _, s := range p.SKUs {
			if s.Price < 0 || s.Price > MaxPrice || s.Currency != p.Currency || (s.Currency != "USD" && s.Currency != "EUR") {
				t.Fatalf("accepted sku %+v of a product in %s", s, p.Currency)
			}
			canon := strings.Join(slices.Sorted(maps.Keys(s.Attributes)), ",") + "=" + s.Attributes["v"]
			if seen[canon] {
				t.Fatalf("accepted two skus with attributes %v", s.Attributes)
			}
			seen[canon] = true
			minPrice = min(minPrice, s.Price)
		}
		if p.MinPrice != minPrice {
			t.Fatalf("MinPrice = %d; want %d", p.MinPrice, minPrice)
		}
	})
}
