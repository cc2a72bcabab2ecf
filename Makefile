# CryptoVPS. `make run` serves the sandbox on :8080; `make test` runs every test.
GO        ?= go
DATA_DIR  ?= ./data
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run build test test-short bench lint fmt vet clean screenshots

run:
	$(GO) run ./cmd/cryptovps serve --data-dir $(DATA_DIR)

build:
	$(GO) build -o bin/cryptovps ./cmd/cryptovps

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Figures, not pass/fail: durable appends/s, cold replay events/s, GET req/s,
# Postgres rebuild events/s, audit events/s.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

lint: vet
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

# The dashboard's README screenshots (desktop 1280x800, phone 390x844),
# taken by its browser test in headless Chromium.
screenshots:
	DASHBOARD_SCREENSHOTS=$(CURDIR)/api/dashboard/screenshots $(GO) test -count=1 -run '^TestJourney$$' ./tests/dashboard/

clean:
	rm -rf bin
