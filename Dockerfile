# Multi-stage build: a static vpnfacade (and ec2sim) binary on a distroless,
# non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/vpnfacade ./cmd/vpnfacade \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ec2sim ./cmd/ec2sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vpnfacade /out/ec2sim /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/vpnfacade"]
