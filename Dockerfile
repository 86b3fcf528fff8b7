# syntax=docker/dockerfile:1
# Adit in a container: adit-server is the entrypoint; the adit CLI is in the image too.
#
#   docker build -t adit .
#   docker run -p 8080:8080 -p 7844:7844 -v adit-data:/var/lib/adit adit --public-host tunnel.example.com
#
# It runs as the user `adit` (uid 10001); a host folder mounted at /var/lib/adit instead of
# a named volume must be writable by that uid (`chown 10001 <folder>`).
#
# Arguments after the image name are adit-server flags (`adit-server --help`). The API and
# dashboard bind to 127.0.0.1:8000 inside the container unless --api-addr 0.0.0.0:8000 is
# given. The dashboard needs a login (the first admin's password is printed once at the
# first start); behind a TLS proxy, pass --secure-cookies.

FROM rust:1-bookworm AS builder
WORKDIR /src
# Only what the build needs (keeps target/ and a local .adit/ with its secrets out).
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY core core
COPY proto proto
COPY transport transport
COPY agent agent
COPY server server
COPY dashboard dashboard
COPY migrations migrations
COPY xtask xtask
# The dashboard's browser bundle (wasm, built by `cargo xtask ui`), then the binaries.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    rustup target add wasm32-unknown-unknown \
    && cargo xtask ui --release \
    && mkdir -p /usr/local/share/adit && cp -r target/site /usr/local/share/adit/site \
    && cargo build --release --locked -p adit-server -p adit-agent \
    && cp target/release/adit-server target/release/adit /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/adit-server /usr/local/bin/adit /usr/local/bin/
COPY --from=builder /usr/local/share/adit/site /usr/local/share/adit/site
ENV ADIT_UI_DIR=/usr/local/share/adit/site
# The server runs as an unprivileged user (every port it listens on is above 1024); the
# data folder is its own, and a named volume mounted there starts out owned by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/adit \
        --shell /usr/sbin/nologin adit \
    && mkdir -p /var/lib/adit && chown adit:adit /var/lib/adit && chmod 0700 /var/lib/adit
# The database (SQLite), keys, certificates and the admin token; keep it on a volume.
ENV ADIT_DATA_DIR=/var/lib/adit
VOLUME ["/var/lib/adit"]
USER adit
# edge (HTTP), tunnel listener (TLS, connectors dial it), API + dashboard
EXPOSE 8080 8443 7844 8000
# `adit-server health` asks the API listener's /readyz (database answering, not leaving a
# cluster); it reads the same ADIT_* settings as the server, so it finds the API address.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s CMD ["adit-server", "health"]
ENTRYPOINT ["adit-server"]
