# syntax=docker/dockerfile:1
# Multi-stage build: static vpnfacade and ec2sim binaries on a distroless,
# non-root base (no shell: the health check is `vpnfacade healthcheck`).
# Cross-builds with buildx: the compiler runs on the build platform.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/vpnfacade ./cmd/ec2sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vpnfacade /out/ec2sim /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080
# Asks the gRPC health service of the server in this container (the address
# comes from VPNFACADE_LISTEN, default :8080): healthy once a snapshot can
# answer. Containers running ec2sim from this image disable it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/vpnfacade", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/vpnfacade"]
