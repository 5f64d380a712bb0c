# Multi-stage build of the portcullis binary.
#   docker build -t portcullis .
#   docker run -p 8080:8080 -p 8443:8443 -v portcullis-data:/data \
#     -e PORTCULLIS_ADMIN=admin -e PORTCULLIS_ADMIN_PASSWORD=change-me portcullis
#
# Environment:
#   PORTCULLIS_ADMIN / PORTCULLIS_ADMIN_PASSWORD  first administrator of the master realm,
#                                                 created at first start (like KEYCLOAK_ADMIN)
#   PORTCULLIS_CONFIG     configuration file (default /etc/portcullis/portcullis.toml)
#   PORTCULLIS_HTTP / PORTCULLIS_HTTPS / PORTCULLIS_DATA_DIR  override the file
#   RUST_LOG              log filter (overrides log.level)

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY vendor vendor
RUN mkdir -p src benches tests/it \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/startup.rs && echo 'fn main() {}' > tests/it/main.rs \
    && cargo build --release --locked && rm -rf src benches tests
COPY src src
COPY benches benches
COPY tests tests
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin portcullis

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin portcullis \
    && mkdir -p /data /certs /etc/portcullis \
    && chown portcullis:portcullis /data /certs
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY config/portcullis.toml /etc/portcullis/portcullis.toml
COPY themes /usr/share/portcullis/themes
ENV PORTCULLIS_CONFIG=/etc/portcullis/portcullis.toml \
    PORTCULLIS_DATA_DIR=/data
# The default config keeps certificates in ./certs (relative to the working directory).
WORKDIR /
USER portcullis
VOLUME ["/data", "/certs"]
EXPOSE 8080 8443
HEALTHCHECK --interval=10s --timeout=2s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200' <&3"]
ENTRYPOINT ["portcullis"]
CMD ["serve"]
