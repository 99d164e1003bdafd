# uvmbuild's developer entry points. `make test` is the README's test
# command and what CI (.ci/run) runs.

GO ?= go
BIN := bin/uvmbuild
# The demo: the built-in demo recipe's main target. Override to try the
# small sample graph: make demo DEMO_RECIPE=sample DEMO_ARGS=
DEMO_RECIPE ?= demo
DEMO_ARGS ?= all-confpods

.PHONY: build test bench demo clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/uvmbuild

test:
	$(GO) test ./...

# Each scripts/bench-*.sh measures one part against its reference tool in
# the same run and prints the ratio; all run even if one fails.
bench: build
	@status=0; for s in scripts/bench-*.sh; do echo "== $$s"; bash "$$s" || { echo "$$s failed"; status=1; }; done; exit $$status

demo: build
	./$(BIN) --recipe $(DEMO_RECIPE) $(DEMO_ARGS)

clean:
	rm -rf bin out
