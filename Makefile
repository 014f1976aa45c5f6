# courier — the commands the README gives. `make test` is what CI runs.
GO ?= go

.PHONY: test vet build run bench fuzz postgres

build:
	$(GO) build -o bin/courier ./cmd/courier

run:
	$(GO) run ./cmd/courier serve

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# PostgreSQL's server binaries, which the PostgreSQL store's tests start
# (installed on Debian when missing; see .ci/ensure-postgres).
postgres:
	@bash .ci/ensure-postgres

# Every test, with the race detector; fuzz targets run their seed corpora.
# Then every Go benchmark once, so that none is found broken only when a
# figure is wanted (their figures at 1x mean nothing).
# bench/peers is a module of its own (the peers' dependencies stay out of
# courier's): its tests, of the table and the parsing, run here too.
test: vet postgres
	$(GO) test -race -count=1 -timeout 25m ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 10m ./...
	cd bench/peers && $(GO) vet ./... && $(GO) test -race -count=1 ./...

# Go benchmarks; figures go into docs/benchmarks.md with the command used.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
