# Payper build and test entry points. `make test` is what CI runs.
GO ?= go

.PHONY: test test-faults test-go deps contracts fuzz vet fmt-check build bench bench-exact

# Every test: installs the npm packages the tests need, starts a throwaway PostgreSQL cluster on
# loopback for the PostgreSQL suites, runs all Go tests (interop with the official x402 npm
# packages included), then stops the cluster.
# The packages that handle payments concurrently run under the race detector, the rest without
# it; each package runs once.
RACE_DIRS := x402 paywall client store settle pricing money method scheme internal/app chain/evm
RACE_PKGS := $(foreach d,$(RACE_DIRS),./$(d)/...)
RACE_RE := /payper/($(subst $(eval) ,|,$(strip $(RACE_DIRS))))(/|$$)

test: deps vet fmt-check
	scripts/pgtest.sh sh -c '$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -Ev "$(RACE_RE)") && \
		$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)'

# The fault suites at full size: gateways killed (SIGKILL) at every settlement step and
# restarted, two replicas on one PostgreSQL racing 1,000 replays of exact payments and 1,000
# vouchers while claims run, the database and the chain RPC taken away. `make test` runs the same
# tests at a tenth of the size.
FAULT_TESTS := Kill|Replica|Gone|Fault|Race|Breaker|Nonce|Stuck|Failover|FailsOver|Down|Unfunded|Vanished|Idle|Slow|Timeout|Pending|InFlight|Claimer|Lease
test-faults: deps
	scripts/pgtest.sh sh -c 'PAYPER_FAULT_SCALE=10 $(GO) test -count=1 -timeout 30m -run "$(FAULT_TESTS)" ./internal/app/ ./method/batch/ ./store/... ./chain/... ./proxy/ ./internal/httpguard/'

# npm packages pinned by the lock files: solc for the contracts, the x402 reference SDK for interop.
deps:
	@for d in contracts interop; do \
		if [ -f $$d/package-lock.json ] && { [ -n "$$CI" ] || [ ! -d $$d/node_modules ]; }; then \
			echo "npm ci in $$d"; (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
		fi; \
	done

# Rebuild contract artifacts and Go bindings from contracts/src.
contracts:
	bash contracts/gen.sh

build:
	$(GO) build -o payper ./cmd/payper

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Short runs of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# The gateway in channel mode against a bare reverse proxy (same upstream, load generator,
# machine and run), after the voucher verification micro-benchmark on one core. Targets:
# verification under 100 µs, channel-mode throughput at least 0.7x the bare proxy. Missed
# targets are reported, not failed. Two runs: an upstream that answers at once (the ratio is
# then the gateway's whole CPU cost against the proxy's; phase F shows the most any gateway
# that recovers one signature per request reaches) and one that waits 10 ms first, as an API
# doing real I/O does. Pass flags to both with BENCHFLAGS, e.g.
# BENCHFLAGS='-duration 30s -cpuprofile gateway.pprof'.
# Then exact mode (bench-exact): Payper's exact payments, one gateway per settlement flow,
# against the official x402 TypeScript stack (interop/bench-official-server.mjs) on anvil (from
# interop's npm packages) and on the embedded dev chain, at 1, 8 and 32 connections, with the
# issue's targets printed, not failed. Its flags go in BENCHEXACTFLAGS, e.g.
# BENCHEXACTFLAGS='-chains anvil -connections 32 -duration 20s'.
BENCHFLAGS ?=
BENCHEXACTFLAGS ?=
bench: deps
	$(GO) test -run '^$$' -bench '^BenchmarkVerifyVoucher$$' -cpu 1 -benchmem ./scheme/batch/
	$(GO) run ./bench $(BENCHFLAGS)
	$(GO) run ./bench -upstream-delay 10ms -drift=false -verify=false -floor=false $(BENCHFLAGS)
	$(GO) run ./bench -mode exact $(BENCHEXACTFLAGS)

bench-exact: deps
	$(GO) run ./bench -mode exact $(BENCHEXACTFLAGS)
