# scram-proxy container image: a static binary on a distroless base, run as
# nonroot. Build: docker build -t scram-proxy .
# The configuration is mounted at /etc/scram-proxy/scram-proxy.yaml (see
# deploy/ for Kubernetes and docker-compose examples).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/scram-proxy ./cmd/scram-proxy
# The state volume's mount point, owned by the proxy's user: a fresh Docker
# volume takes the ownership of what the image has there.
RUN mkdir -p /out/var/lib/scram-proxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scram-proxy /usr/local/bin/scram-proxy
COPY --from=build --chown=65532:65532 /out/var/lib/scram-proxy /var/lib/scram-proxy
# nonroot by number, so that Kubernetes can verify runAsNonRoot.
USER 65532:65532
# 9096: Kafka clients (SASL_SSL SCRAM). 9404: /metrics, /healthz, /readyz.
EXPOSE 9096 9404
ENTRYPOINT ["/usr/local/bin/scram-proxy"]
CMD ["--config", "/etc/scram-proxy/scram-proxy.yaml"]
