# secrets-sidecar: see README.md. `make test` is the test command CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO       ?= go
MODULE   := github.com/secrets-sidecar/secrets-sidecar
BIN      := bin/secrets-sidecar
TOOLS    := $(CURDIR)/bin/tools
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X $(MODULE)/modules/buildinfo.version=$(VERSION) -X $(MODULE)/modules/buildinfo.commit=$(COMMIT)
# No inlining outside the runtime: 1.4 MiB less binary, and so less RSS
# (a process maps nearly all of its binary), for about 15% more CPU in
# `once` (docs/benchmarks.md). The Dockerfile builds with the same flags.
GCFLAGS  := -gcflags=all=-l -gcflags=runtime/...= -gcflags=internal/...= -gcflags=sync/...=

# Pinned tool versions (renovate.json bumps them).
GOLANGCI_LINT_VERSION := v2.15.0

.PHONY: build
build: ## static binary in bin/
	CGO_ENABLED=0 $(GO) build -trimpath $(GCFLAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/secrets-sidecar

.PHONY: test
test: ## every test, with -race, including integration tests against the real Vault dev servers and PostgreSQL
	@bin=$$(scripts/devvault.sh) && dbbin=$$(scripts/devvault.sh --db) && pg=$$(scripts/postgres.sh) && \
	SIDECAR_DEVVAULT_BIN=$$bin SIDECAR_DEVVAULT_DB_BIN=$$dbbin SIDECAR_POSTGRES_BINDIR=$$pg $(GO) test -race -count=1 -timeout 20m ./...

.PHONY: lint
lint: $(TOOLS)/golangci-lint ## gofmt, go vet and golangci-lint
	@files=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard "*.go")); test -z "$$files" || { echo "gofmt: needs formatting: $$files"; exit 1; }
	$(GO) vet ./...
	$(TOOLS)/golangci-lint run ./...
	scripts/devvault.sh --prepare && cd scripts/devvault && $(GO) vet ./... && $(TOOLS)/golangci-lint run --config ../../.golangci.yml ./...
	cd scripts/notices && $(GO) vet ./... && $(TOOLS)/golangci-lint run --config ../../.golangci.yml ./...
	cd scripts/imagebuild && $(GO) vet ./... && $(TOOLS)/golangci-lint run --config ../../.golangci.yml ./...

$(TOOLS)/golangci-lint:
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files --cached --others --exclude-standard "*.go")

.PHONY: devvault
devvault: build ## build (once, cached) and start the Vault dev server in the foreground
	@bin=$$(scripts/devvault.sh) && echo "Vault dev server: Ctrl-C stops it" >&2 && exec $$bin -addr 127.0.0.1:8200 -root-token root -log-level warn

.PHONY: clean
clean: ## remove build output (the dev server cache stays in ~/.cache/secrets-sidecar)
	rm -rf bin dist

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

.PHONY: demo
demo: ## the README's demo: sidecar + local Vault dev server, seeded secrets, a live change
	@scripts/demo.sh

# --- container image and deployment checks ---

# renovate: datasource=go depName=github.com/rhysd/actionlint
ACTIONLINT_VERSION := v1.7.12

.PHONY: image-test
image-test: ## the image's files (from the Dockerfile) in a chroot as uid 65534: version, validate, once, run, HEALTHCHECK against the dev server
	@bin=$$(scripts/devvault.sh) && \
	SIDECAR_DEVVAULT_BIN=$$bin $(GO) test -count=1 -v -run '^TestImage' ./cmd/secrets-sidecar

.PHONY: check-deployments
check-deployments: ## docker-compose config, shellcheck, actionlint, Kubernetes manifests, configs, alert rules and dashboard (installs its tools)
	ACTIONLINT_VERSION=$(ACTIONLINT_VERSION) TOOLS=$(TOOLS) scripts/check-deployments.sh

# --- release ---

# GoReleaser for `make release-snapshot` and the tag workflow: installed once
# per version into the user cache (it survives `make clean` and fresh
# clones), then copied into bin/tools.
# renovate: datasource=go depName=github.com/goreleaser/goreleaser/v2
GORELEASER_VERSION := v2.15.1
TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/secrets-sidecar/tools
GORELEASER  := $(TOOLS)/goreleaser-$(GORELEASER_VERSION)

$(GORELEASER):
	@cached=$(TOOLS_CACHE)/goreleaser-$(GORELEASER_VERSION)/goreleaser; \
	if [ ! -x "$$cached" ]; then \
		echo "installing goreleaser $(GORELEASER_VERSION) into $$(dirname $$cached) (go install, once per version)"; \
		GOBIN=$$(dirname $$cached) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION); \
	fi; \
	mkdir -p $(TOOLS) && cp "$$cached" $@.tmp && mv $@.tmp $@

# cyclonedx-gomod for THIRD_PARTY_NOTICES (scripts/notices.sh): it reads the
# binary's dependency graph and detects each module's licence. Cached per
# version like GoReleaser (about 30 s cold).
# renovate: datasource=go depName=github.com/CycloneDX/cyclonedx-gomod
CYCLONEDX_GOMOD_VERSION := v1.10.0
CYCLONEDX_GOMOD := $(TOOLS)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)

$(CYCLONEDX_GOMOD):
	@cached=$(TOOLS_CACHE)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)/cyclonedx-gomod; \
	if [ ! -x "$$cached" ]; then \
		echo "installing cyclonedx-gomod $(CYCLONEDX_GOMOD_VERSION) into $$(dirname $$cached) (go install, once per version)"; \
		GOBIN=$$(dirname $$cached) $(GO) install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_GOMOD_VERSION); \
	fi; \
	mkdir -p $(TOOLS) && cp "$$cached" $@.tmp && mv $@.tmp $@

.PHONY: notices
notices: $(CYCLONEDX_GOMOD) ## regenerate THIRD_PARTY_NOTICES from the binary's dependency graph (after adding or bumping a dependency)
	CYCLONEDX_GOMOD=$(CYCLONEDX_GOMOD) scripts/notices.sh write

.PHONY: check-notices
check-notices: $(CYCLONEDX_GOMOD) ## THIRD_PARTY_NOTICES is up to date and every linked module has a known, allowed licence (CI)
	cd scripts/notices && $(GO) test -count=1 .
	CYCLONEDX_GOMOD=$(CYCLONEDX_GOMOD) scripts/notices.sh check

.PHONY: goreleaser
goreleaser: $(GORELEASER) ## install the pinned GoReleaser into bin/tools (cached per version in ~/.cache/secrets-sidecar/tools)

.PHONY: release-snapshot
release-snapshot: $(GORELEASER) ## the release build without publishing (dist/): goreleaser check and snapshot, then checks the stamped version, archives and checksums
	GORELEASER=$(GORELEASER) scripts/release-snapshot.sh

.PHONY: release
release: $(GORELEASER) ## the tag workflow's release: goreleaser release --clean (needs a tag, GITHUB_TOKEN, cosign and syft; RELEASE_NOTES=file)
	$(GORELEASER) release --clean $(if $(RELEASE_NOTES),--release-notes $(RELEASE_NOTES))

# cosign for the image's signatures and SBOM attestations (and GoReleaser's
# signature of checksums.txt in the tag workflow): go install, cached per
# version like GoReleaser (about 3 min cold, 140 MB), in a directory of its
# own so that the workflow can put it on PATH as `cosign`.
# renovate: datasource=go depName=github.com/sigstore/cosign/v2
COSIGN_VERSION := v2.6.5
COSIGN := $(TOOLS)/cosign-$(COSIGN_VERSION)/cosign

$(COSIGN):
	@cached=$(TOOLS_CACHE)/cosign-$(COSIGN_VERSION)/cosign; \
	if [ ! -x "$$cached" ]; then \
		echo "installing cosign $(COSIGN_VERSION) into $$(dirname $$cached) (go install, once per version)" >&2; \
		GOBIN=$$(dirname $$cached) $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION); \
	fi; \
	mkdir -p $(dir $@) && cp "$$cached" $@.tmp && mv $@.tmp $@

.PHONY: cosign
cosign: $(COSIGN) ## install the pinned cosign into bin/tools and print its directory (cached per version in ~/.cache/secrets-sidecar/tools)
	@echo $(dir $(COSIGN))

.PHONY: release-image
release-image: $(COSIGN) $(CYCLONEDX_GOMOD) ## the tag workflow's image: IMAGE=ghcr.io/... TAG=v1.2.3, from dist/ (scripts/release-image.sh: push, verify, sign, SBOM attestations)
	@test -n "$(IMAGE)" -a -n "$(TAG)" || { echo "make release-image: set IMAGE and TAG" >&2; exit 2; }
	COSIGN=$(COSIGN) CYCLONEDX_GOMOD=$(CYCLONEDX_GOMOD) GO=$(GO) scripts/release-image.sh "$(IMAGE)" "$(TAG)"

.PHONY: release-check
release-check: $(COSIGN) $(CYCLONEDX_GOMOD) ## after release-snapshot: the image path of a tag run for real: local registry, push, cosign sign/attest/verify with a test key, pull by digest into Docker and run (installs docker-registry and docker.io, starts dockerd)
	cd scripts/imagebuild && $(GO) test -count=1 .
	COSIGN=$(COSIGN) CYCLONEDX_GOMOD=$(CYCLONEDX_GOMOD) GO=$(GO) scripts/release-check.sh

# --- a real container engine ---

.PHONY: test-containers
test-containers: build ## the image (from bin/) and the Compose test variant under a real Docker engine; installs docker.io, docker-compose, busybox-static and starts dockerd when missing
	SIDECAR_BIN=$(CURDIR)/$(BIN) SIDECAR_VERSION=$(VERSION) SIDECAR_COMMIT=$(COMMIT) GO=$(GO) scripts/test-containers.sh

# --- benchmarks, fault injection, fuzzing, soak ---

# consul-template for `make bench`: the newest release, still MPL-2.0
# (HashiCorp's BUSL change did not cover it; its LICENSE at v0.41.1 is
# MPL-2.0). Installed into the cache, never into the repository.
# renovate: datasource=go depName=github.com/hashicorp/consul-template
CONSUL_TEMPLATE_VERSION := v0.41.1
BENCH_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/secrets-sidecar/consul-template-$(CONSUL_TEMPLATE_VERSION)
# A count, not a duration: Go 1.26's fuzzing coordinator can fail a run with
# "context deadline exceeded" when a duration ends while a worker is busy
# (fixed in Go 1.27). About 10-25 s per target on 2 cores; rendering is the
# slowest to run, so it has its own count.
FUZZTIME    ?= 100000x
FUZZTIME_RENDER ?= 30000x

.PHONY: bench
bench: build ## secrets-sidecar vs consul-template vs a bare client, 10 to 10,000 secrets, on the Vault dev server (about 20 min); writes docs/benchmarks.md and .svg
	@test -x $(BENCH_CACHE)/consul-template || GOBIN=$(BENCH_CACHE) $(GO) install github.com/hashicorp/consul-template@$(CONSUL_TEMPLATE_VERSION)
	@bin=$$(scripts/devvault.sh) && \
	$(GO) run ./scripts/bench -devvault $$bin -sidecar $(BIN) -consul-template $(BENCH_CACHE)/consul-template -doc docs/benchmarks.md $(BENCH_FLAGS)

.PHONY: bench-fleet
bench-fleet: build ## 100 sidecars x 10 secrets started together against one dev server, 5 runs (about 7 min): readiness, Vault requests/s, logins, RSS; writes docs/benchmarks.md
	@bin=$$(scripts/devvault.sh) && \
	$(GO) run ./scripts/bench -fleet -devvault $$bin -sidecar $(BIN) -doc docs/benchmarks.md $(BENCH_FLAGS)

.PHONY: test-faults
test-faults: ## fault injection against the real binary and dev server: kill -9 loop, Vault outage, token expiry, unwritable destination, slow Vault
	@bin=$$(scripts/devvault.sh) && \
	SIDECAR_DEVVAULT_BIN=$$bin $(GO) test -tags faults -count=1 -timeout 20m -v -run '^TestFault' ./cmd/secrets-sidecar

.PHONY: test-soak
test-soak: ## 1,000 secrets at a 1 s refresh for 60 s in-process (goroutines, heap, fds back to baseline); a certificate set issued 100 times under readers (no torn pair); 10 minutes of a 60 s certificate (about 15 issuances)
	@bin=$$(scripts/devvault.sh) && \
	SIDECAR_DEVVAULT_BIN=$$bin $(GO) test -tags soak -count=1 -timeout 30m -v -run '^TestSoak' ./cmd/secrets-sidecar

.PHONY: fuzz
racer: build ## start-up exposure of VAULT_TOKEN to a same-uid co-tenant, binary readable vs execute-only (root; ~2 min)
	$(GO) run ./scripts/racer -bin bin/secrets-sidecar -n $${RACER_STARTS:-1000}

fuzz: ## each fuzz target for FUZZTIME executions (default 100000x; FUZZTIME_RENDER 30000x) on top of its seed corpus
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./modules/config
	$(GO) test -run '^$$' -fuzz '^FuzzParseEnv$$' -fuzztime $(FUZZTIME) ./modules/config
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME_RENDER) ./jobs/render

