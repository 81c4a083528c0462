# Redline. `make test` is the test command; CI (.ci/run) calls it.
SHELL := /bin/bash
GO ?= go
PROTOS := $(wildcard api/*/v1/*.proto)
BIN := $(CURDIR)/.bin

.PHONY: drills-check test test-unit bench lint gen services fuzz rules-check

# test starts (or installs) PostgreSQL, Redis, NATS, etcd and promtool, then runs every test
# with the race detector.
test: services
	REDLINE_BUILTIN_DRILLS=alone $(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) drills-check
	$(MAKE) rules-check

# drills-check runs the built-in game-day drills (chaos/drill/builtin), shortened, one
# package at a time and after the other tests: they judge latency and goodput under load,
# which a machine busy with the rest of the suite would fail. REDLINE_DRILL_SCALE=1 runs
# the one-process drills at full length.
drills-check: services
	$(GO) test -race -count=1 -p 1 -timeout 8m -run '^(TestBuiltinDrills|TestDrillOrderKillProcs)$$' ./chaos/drill ./cmd/redline

# rules-check writes the Prometheus rules and promtool tests of every default SLO
# (sre/rules) and has promtool check the rules and run every test; go test ./sre/rules runs
# one SLO of each shape. A SLO's two tests take about 4 s, so they run two at a time.
RULES_DIR := $(BIN)/slo-rules
rules-check:
	@command -v promtool >/dev/null || { echo "promtool missing: apt-get install -y prometheus"; exit 1; }
	rm -rf $(RULES_DIR)
	REDLINE_RULES_OUT=$(RULES_DIR) $(GO) test -count=1 -run '^TestWriteDefaults$$' ./sre/rules
	promtool check rules $(RULES_DIR)/*.rules.yaml
	cd $(RULES_DIR) && ls *.test.yaml | xargs -P 2 -n 4 promtool test rules

# test-unit runs the tests that need no outside service.
test-unit:
	REDLINE_SKIP_INTEGRATION=1 $(GO) test -race -count=1 ./...

services:
	bash scripts/services.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./kit/...
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 5 .

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# gen regenerates the protobuf code offline: protoc from Debian's protobuf-compiler, the Go
# plugins built from the versions pinned in go.mod (tool directives).
gen:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BIN)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	PATH=$(BIN):$$PATH protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTOS)

# fuzz runs each fuzz target for FUZZTIME (their seed corpora also run in `make test`).
FUZZTIME ?= 15s
FUZZ_TARGETS := FuzzBFFRoutes:./services/bff FuzzDecodeJSON:./kit/transport/http FuzzExtract:./kit/meta \
	FuzzVerify:./kit/auth FuzzDecodeCursor:./services/note/internal/biz FuzzLoadYAML:./kit/conf \
	FuzzRebind:./kit/data/sqldb FuzzGetCapacity:./ha/quota FuzzConfig:./ha/quota \
	FuzzDecode:./kit/page FuzzValidateReserve:./services/inventory/internal/biz \
	FuzzValidateTargets:./services/interaction/internal/biz \
	FuzzValidate:./services/comment/internal/biz FuzzListCursors:./services/comment/internal/biz \
	FuzzDecodeCommand:./services/comment/internal/biz FuzzDecodeCursor:./services/history/internal/biz \
	FuzzValidateView:./services/history/internal/biz FuzzTokenize:./services/search/internal/biz \
	FuzzParseQuery:./services/search/internal/biz FuzzParseEvent:./services/search/internal/service \
	FuzzValidate:./services/note/internal/biz FuzzDecodeCursor:./services/feed/internal/biz \
	FuzzDecodeNoteEvent:./services/feed/internal/biz FuzzDecodeFollows:./services/feed/internal/biz \
	FuzzValidateProduct:./services/product/internal/biz FuzzValidateCreate:./services/order/internal/biz \
	FuzzDecodeCallback:./services/payment/provider FuzzDecodeCharge:./services/payment/provider \
	FuzzVerify:./services/payment/provider FuzzVerify:./stress/lane FuzzParse:./stress/scenario \
	FuzzParseMetrics:./stress/capacity FuzzBusinessSeries:./cmd/redline \
	FuzzDecodeWebhook:./sre/alert FuzzParseMatchers:./sre/alert FuzzParseSeverity:./sre/incident FuzzParse:./sre/slo \
	FuzzParseSpec:./chaos/faults FuzzParseToxic:./chaos/netfault FuzzParse:./chaos/drill
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}" || exit 1; \
	done
