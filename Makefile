# ustack: the two commands of the README are `go run ./cmd/ustack demo`
# and `make test`.

GO ?= go
# Go lives in /usr/local/go on our machines; CI's shell may not have it
# on PATH.
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
FUZZTIME ?= 30s

.PHONY: test tools fmt vet race fuzz demo bench

## test: everything CI runs — tools, gofmt, vet, all tests with the race
## detector (fuzz seed corpora included), the interop suite when root.
test: tools fmt vet race

tools:
	@./scripts/install-test-tools.sh

fmt:
	@files=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 25m ./...

## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

demo:
	$(GO) run ./cmd/ustack demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
