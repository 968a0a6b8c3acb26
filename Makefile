# ustack: the two commands of the README are `go run ./cmd/ustack demo`
# and `make test`.

GO ?= go
# Go lives in /usr/local/go on our machines; CI's shell may not have it
# on PATH.
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
FUZZTIME ?= 30s

SEEDS ?= 100000

.PHONY: test tools fmt vet race allocs benchmod wgnetmod fuzz sim eval demo bench

# As root (CI), every test must run: the kernel-link tests fail instead of
# skipping when a tool or device is missing (internal/netns/netnstest).
export USTACK_TEST_STRICT := $(shell [ "$$(id -u)" = 0 ] && echo 1)

## test: everything CI runs — tools, gofmt, vet, all tests with the race
## detector (fuzz seed corpora included), the interop suite when root,
## and the zero-allocation tests without the race detector; then the
## nested modules (their own go.mod): wgnet's tests, and the bench
## module's vet and smoke test of every case.
test: tools fmt vet allocs race wgnetmod benchmod

tools:
	@./scripts/install-test-tools.sh

fmt:
	@files=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

# Packages whose tests drive real kernel links in namespaces they create
# (root; they skip otherwise). They run after the others, one package at
# a time: on a 2-CPU machine their kernel traffic, run beside the
# timing-sensitive in-memory tests, starved those into timeouts.
KERNEL_PKGS ?= ./internal/netns/... ./link/tap ./link/afpacket ./cmd/ustack ./interop

race:
	$(GO) test -race -count=1 -timeout 25m $$($(GO) list ./... | grep -v -x -F $$(for p in $(KERNEL_PKGS); do $(GO) list $$p; done | sed 's/^/-e /'))
	$(GO) test -race -count=1 -timeout 25m -p 1 $(KERNEL_PKGS)

# The zero-allocation tests (testing.AllocsPerRun) skip under the race
# detector, whose sync.Pool drops items at random; run them without it.
# So does TestIdleConnMemory (the memory an idle connection costs), which
# the race detector's bookkeeping would inflate.
# The real links' (TAP and AF_PACKET with offloads) need root and
# namespaces, so they run one package at a time, as the kernel tests do.
allocs:
	$(GO) test -count=1 -run 'Allocs|IdleConnMemory' $$($(GO) list ./... | grep -v -x -F $$(for p in $(KERNEL_PKGS); do $(GO) list $$p; done | sed 's/^/-e /'))
	$(GO) test -count=1 -p 1 -run 'Allocs' ./link/tap ./link/afpacket

# The nested bench module (gVisor lives only there): vet it and run its
# tests, a quick pass over every benchmark case that checks each produced
# sound figures (about a minute as root, where the TAP and AF_PACKET cases
# run too).
benchmod:
	cd bench && $(GO) vet ./...
	cd bench && $(GO) test -race -count=1 -timeout 10m ./...

# The nested wgnet module (wireguard-go lives only there): vet, its
# zero-allocation tests without the race detector, then every test with
# it — two wireguard-go devices over loopback UDP, the resolver in
# virtual time, the import swap (which builds and runs a program).
wgnetmod:
	cd wgnet && $(GO) vet ./...
	cd wgnet && $(GO) test -count=1 -run 'Allocs' ./...
	cd wgnet && $(GO) test -race -count=1 -timeout 10m ./...

## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## sim: sweep SEEDS simulator seeds (make sim SEEDS=1000000).
sim:
	$(GO) test -count=1 -timeout 0 ./sim -run '^TestProperties$$' -sim.seeds=$(SEEDS)

## eval: regenerate the congestion-control tables in docs/eval (every
## registered controller, in the simulator; about a minute).
eval:
	$(GO) run ./sim/cmd/evalcc -out docs/eval

demo:
	$(GO) run ./cmd/ustack demo

## bench: ustack beside gVisor's netstack and the kernel (bench/, about
## 3 minutes); prints the tables and writes them into BENCHMARKS.md.
## BENCHFLAGS adds flags, e.g. make bench BENCHFLAGS='-note "machine busy"'.
BENCHFLAGS ?=
bench:
	cd bench && $(GO) run ./cmd/bench -write ../BENCHMARKS.md -command 'make bench' $(BENCHFLAGS)
