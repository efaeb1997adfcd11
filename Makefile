# scram-proxy build and test entry points. `make test` is what CI runs.
GO        ?= go
BIN       ?= bin/scram-proxy
FUZZTIME  ?= 60s
# Two Go modules: the product (.) and its tests (test/: integration tests,
# client drivers, benchmark, real-Kafka test bed), each with its own go.mod,
# so the product's go.mod lists only what the product uses.
MODULES   := . test

.PHONY: all build demo test test-deps lint unit fuzz bench clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/scram-proxy

# Runs the proxy in front of an in-process demo Kafka cluster on :9096.
demo:
	$(GO) run ./cmd/scram-proxy demo

# Everything: installs the real clients when missing, then vet, gofmt and
# every test (unit, fuzz seeds, integration with real clients) under -race.
test: test-deps lint
	@mkdir -p bin
	@for m in $(MODULES); do \
	  echo "== go test -race ./... in $$m"; \
	  MATRIX_OUT=$(CURDIR)/bin/client-matrix.txt $(GO) -C $$m test -race -count=1 -timeout 40m ./... || exit 1; \
	done
	@echo "client matrix (TLS + SCRAM through the proxy, produce + consume in a group):"
	@cat bin/client-matrix.txt

test-deps:
	GO=$(GO) bash scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "== go vet ./... in $$m"; $(GO) -C $$m vet ./... || exit 1; done

unit:
	@for m in $(MODULES); do $(GO) -C $$m test -race -count=1 -short ./... || exit 1; done

# Runs every fuzz target for FUZZTIME each.
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# Direct vs through-the-proxy in one run (test/bench), then the Go
# micro-benchmarks (credential store scale, login rate). Writes bin/bench.txt.
bench:
	$(GO) -C test run ./bench -out $(CURDIR)/bin/bench.txt
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/...

clean:
	rm -rf bin
