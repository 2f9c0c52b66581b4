# Slipway's developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/slipway
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
HTMX      := static/vendor/htmx.min.js
DEVENV    := .dev/env
# make run: the example serving receiver, and whether a first start loads the demo
RECEIVER        := bin/serving-receiver
RECEIVER_ADDR   := 127.0.0.1:8091
RECEIVER_SECRET := .dev/receiver.secret
DEMO            ?= 1
TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

.PHONY: deps
deps: $(HTMX) ## fetch front-end files (htmx from npm)

.PHONY: generate
generate: ## regenerate templ code
	$(GO) tool templ generate -path web

.PHONY: build
build: deps ## build bin/slipway
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/server

.PHONY: services
services: ## start local PostgreSQL and MinIO (state in .dev/)
	scripts/devservices.sh up

.PHONY: services-down
services-down: ## stop local PostgreSQL and MinIO
	scripts/devservices.sh down

.PHONY: run
run: build services ## start Slipway on :8080 with local PostgreSQL and MinIO; a first start loads the demo (DEMO=0: not)
	@source $(DEVENV); \
	$(GO) build -trimpath -o $(RECEIVER) ./examples/serving-receiver; \
	if [ "$(DEMO)" != 0 ]; then ./$(BIN) demo --webhook-url http://$(RECEIVER_ADDR)/hooks --secret-file $(RECEIVER_SECRET); fi; \
	if [ -s $(RECEIVER_SECRET) ]; then \
		SLIPWAY_WEBHOOK_SECRET=$$(cat $(RECEIVER_SECRET)) ./$(RECEIVER) -addr $(RECEIVER_ADDR) -dir .dev/serving & \
		trap "kill $$! 2>/dev/null" EXIT; \
		receiver="  Serving:    examples/serving-receiver on $(RECEIVER_ADDR) loads production into .dev/serving\n"; \
	fi; \
	printf '\n  Slipway: http://localhost:8080\n  Sign in as: admin / %s\n  API token:  %s\n  (credentials of the first start; kept in .dev/secrets.env)\n'"$${receiver:-}"'\n' "$$SLIPWAY_BOOTSTRAP_PASSWORD" "$$SLIPWAY_BOOTSTRAP_TOKEN"; \
	./$(BIN) serve

.PHONY: test
test: deps ## run every test against local PostgreSQL and MinIO (or SLIPWAY_TEST_* services)
	@if [ -z "$${SLIPWAY_TEST_DATABASE_URL:-}" ] || [ -z "$${SLIPWAY_TEST_S3_ENDPOINT:-}" ]; then \
		if scripts/devservices.sh up; then \
			source $(DEVENV); \
		elif docker info >/dev/null 2>&1; then \
			echo "local services unavailable: the tests start containers (testcontainers)"; \
		else \
			exit 1; \
		fi; \
	fi; \
	echo "go test $(TEST_FLAGS) ./..."; \
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: screenshots
screenshots: deps services ## refresh docs/screenshots from the demo journey in headless Chromium
	source $(DEVENV); SLIPWAY_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestBrowserJourneyDemo$$' ./internal/server/

.PHONY: bench
bench: build services ## measure uploads, version reads, deep pages, lineage queries and OpenLineage ingestion against baselines (prints a table)
	source $(DEVENV); $(GO) run ./cmd/bench -bin $(BIN)

.PHONY: check
check: deps ## gofmt, go vet, generated-code drift
	@out=$$(find . -name '*.go' -not -name '*_templ.go' -not -path './node_modules/*' -not -path './.dev/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@before=$$(cat web/*_templ.go | sha256sum); $(GO) tool templ generate -path web >/dev/null; \
	after=$$(cat web/*_templ.go | sha256sum); \
	if [ "$$before" != "$$after" ]; then echo "generated templ code was stale: regenerated now, commit web/*_templ.go"; exit 1; fi
	@echo "check: ok"

.PHONY: clean
clean: ## remove build output (not .dev/ state)
	rm -rf bin node_modules
