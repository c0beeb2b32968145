# The gateway's developer commands. Everything here needs only Go, except
# test-twilio (Node.js) and the tunnels (cloudflared); make test also uses
# caddy, kubectl and systemd-analyze where installed (deploy/check).

GO          ?= go
PORT        ?= 5050
FUZZTIME    ?= 10s
# staticcheck 2026.2.2, fetched through the module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build release run dev demo callsim test test-twilio fuzz lint bench load tunnel-quick tunnel help

all: lint test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

build: ## build the gateway binary into bin/gateway
	$(GO) build -o bin/gateway ./cmd/gateway

# The release build, the one the Dockerfile runs (its build stage calls
# make release), so the image's binary is this one: static (no cgo, it runs
# on an image without libc), without the build machine's paths, stamped with
# VERSION (gateway version; logged at start). The image's build passes
# VERSION as a build argument, since .git stays out of its context.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
RELEASE_OUT ?= bin/gateway
release: ## the static release binary, as the image has it: make release VERSION=v1.2.3 RELEASE_OUT=bin/gateway
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -X main.version=$(VERSION)' -o '$(RELEASE_OUT)' ./cmd/gateway

run: ## run the gateway (reads .env, the environment, and ARGS such as --config gateway.yaml)
	$(GO) run ./cmd/gateway $(ARGS)

dev: run ## alias of run

demo: ## the offline demo: a call and a WhatsApp exchange through the real gateway and simulators (about 17 s; ARGS='--speech live' for GPT-Live)
	@$(GO) run ./cmd/demo $(ARGS)

callsim: ## play Twilio against a running gateway: make callsim ARGS='--url https://gw.example.com --wav hello.wav'
	$(GO) run ./cmd/callsim $(ARGS)

test: ## all Go tests with the race detector (no network, no credentials), then the deployment files' (deploy/check)
	$(GO) test -race -count=1 ./...
	cd deploy/check && $(GO) test -race -count=1 ./...

test-twilio: ## the Twilio Function's tests (needs Node.js 20+)
	cd twilio && npm ci --no-audit --no-fund && npm test

fuzz: ## run every Fuzz test for FUZZTIME each
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' --exclude-dir=node_modules .); do \
		dir=$$(dirname $$file); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "$(GO) test -run '^$$' -fuzz '^$$fn$$' -fuzztime $(FUZZTIME) $$dir"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd deploy/check && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

bench: ## benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem ./...

CALLS    ?= 200
DURATION ?= 30s
load: build ## CALLS concurrent simulated calls (default 200) through bin/gateway; figures in load.json
	$(GO) run ./cmd/loadtest -gateway bin/gateway -calls $(CALLS) -duration $(DURATION) -out load.json

tunnel-quick: ## a throwaway https URL for localhost:PORT (cloudflared quick tunnel)
	@command -v cloudflared >/dev/null || { echo "cloudflared is not installed: see https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ (or: brew install cloudflared)" >&2; exit 1; }
	cloudflared tunnel --url http://localhost:$(PORT)

tunnel: ## a named cloudflared tunnel: make tunnel TUNNEL=<name> (set PUBLIC_URL to its hostname)
	@command -v cloudflared >/dev/null || { echo "cloudflared is not installed: see https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ (or: brew install cloudflared)" >&2; exit 1; }
	@[ -n "$(TUNNEL)" ] || { echo "usage: make tunnel TUNNEL=<name> (create one with: cloudflared tunnel login && cloudflared tunnel create <name> && cloudflared tunnel route dns <name> <hostname>)" >&2; exit 1; }
	cloudflared tunnel run --url http://localhost:$(PORT) $(TUNNEL)
