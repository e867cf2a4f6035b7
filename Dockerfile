# syntax=docker/dockerfile:1
#
# secrets-sidecar: one static binary in an empty (scratch) image, running as
# nobody (65534). Build:
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) -t secrets-sidecar .
#
# The final stage holds exactly what deployments/docker/rootfs.sh assembles
# plus the binary; scripts/image-test.sh (run by `make test`) replays this
# file's build steps, assembles the same tree and runs the binary in it with
# chroot as uid 65534 (version, validate, once, run, HEALTHCHECK).

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src

# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .

ARG VERSION=dev
ARG COMMIT=unknown
# Set by BuildKit for the target platform (docker buildx build --platform
# linux/arm64,...): the build stage runs natively and cross-compiles.
ARG TARGETOS
ARG TARGETARCH

RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -gcflags=all=-l -gcflags=runtime/...= -gcflags=internal/...= -gcflags=sync/...= \
      -ldflags "-s -w -X github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo.version=${VERSION} -X github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo.commit=${COMMIT}" \
      -o /image/root/secrets-sidecar ./cmd/secrets-sidecar && \
    chmod 0511 /image/root/secrets-sidecar

# The binary is execute-only (0511) and COPY makes it root's: the kernel
# marks a process non-dumpable at execve when its user may not read the
# binary, so a co-tenant of the same uid cannot read /proc/PID/environ or
# /proc/PID/mem while it starts (exec needs only the x bit, so `isready`
# as HEALTHCHECK runs as before).
#
# /etc/passwd and /etc/group (root, nobody), the CA bundle, a sticky /tmp and
# the /secrets mount point.
RUN sh deployments/docker/rootfs.sh /image

# The final stage. deployments/docker/Dockerfile.prebuilt has the same stage,
# word for word, for a binary built outside Docker (`make build`; `make
# test-containers` builds and runs it under a real engine): it differs only
# in copying image/ from its build context instead of /image/ from the build
# stage. Change both together: scripts/containers (in `make test`) compares them.
FROM scratch

ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="secrets-sidecar" \
      org.opencontainers.image.description="Keeps files on a shared volume in sync with secrets in HashiCorp Vault or OpenBao" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

COPY --from=build /image/root/ /
COPY --from=build --chown=65534:65534 /image/secrets/ /secrets/

USER 65534:65534
# /health, /ready and /metrics (SIDECAR_HTTP_ADDR; empty disables the server).
EXPOSE 8080

ENTRYPOINT ["/secrets-sidecar"]
CMD ["run"]

# No shell, no curl: the binary reads the daemon's status file itself (exit 0
# ready and fresh, 1 otherwise). During the start period it is checked every
# second (Docker 25 and later; older engines check every 10s), so
# `depends_on: condition: service_healthy` releases the app as soon as every
# secret is written. `once` (init) containers exit before it matters.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --start-interval=1s --retries=3 \
    CMD ["/secrets-sidecar", "isready"]
