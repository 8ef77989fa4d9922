# syntax=docker/dockerfile:1
# gaasd in a container: a static binary (the SQLite driver is pure Go), run as
# a non-root user on a distroless base, data in the /data volume.
#   docker build -t gaas . && docker run -p 8000:8000 -v gaas-data:/data gaas

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .ci/run runs this very line (it greps for it), so what the image depends on is tested.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o bin/gaasd ./server/cmd/gaasd
RUN mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/gaasd /usr/local/bin/gaasd
COPY --from=build --chown=65532:65532 /data /data
ENV GAAS_DB=/data/gaas.db \
    GAAS_ADDR=:8000
VOLUME ["/data"]
EXPOSE 8000
USER 65532:65532
# No shell and no curl in the image: gaasd checks its own /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/gaasd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gaasd"]
