# Multi-stage build of the portcullis binary.
#   docker build -t portcullis .
#   docker run -d --name keycloak -p 8080:8080 -p 8443:8443 \
#     -e KEYCLOAK_ADMIN=admin -e KEYCLOAK_ADMIN_PASSWORD=change-me portcullis start-dev
#
# The image is laid out as Keycloak's, so the seed guides' commands run unchanged:
#   /opt/keycloak/bin/kc.sh and kcadm.sh   links to the binary (kc.sh is the entry point:
#                                           `docker run ... portcullis import --file F`)
#   /opt/keycloak/data                      the store (a volume); data/import is read by
#                                           `start-dev --import-realm`
#   docker exec -it keycloak bash, then /opt/keycloak/bin/kcadm.sh config credentials ...
#   docker exec -it keycloak /opt/keycloak/bin/kc.sh export --dir ... --realm ... (the
#                                           running server writes the files)
#
# Environment:
#   KEYCLOAK_ADMIN / KEYCLOAK_ADMIN_PASSWORD (or KC_BOOTSTRAP_ADMIN_USERNAME / _PASSWORD,
#   or PORTCULLIS_ADMIN / PORTCULLIS_ADMIN_PASSWORD)  first administrator of the master
#                                           realm, created at first start
#   KEYCLOAK_IMPORT       realm files (comma-separated) imported at start
#   PORTCULLIS_CONFIG     configuration file (default /etc/portcullis/portcullis.toml)
#   PORTCULLIS_HTTP / PORTCULLIS_HTTPS / PORTCULLIS_DATA_DIR  override the file
#   KC_DB=postgres, KC_DB_URL (jdbc:postgresql://HOST/DB) or KC_DB_URL_HOST/_PORT/_DATABASE,
#   KC_DB_USERNAME, KC_DB_PASSWORD, KC_DB_SCHEMA, KC_DB_POOL_MAX_SIZE
#                         the store on a PostgreSQL database the nodes share (as Keycloak's)
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
    && useradd --system --uid 10001 --home-dir /opt/keycloak --shell /bin/bash portcullis \
    && mkdir -p /opt/keycloak/bin /opt/keycloak/data/import /opt/keycloak/data/export \
       /opt/keycloak/certs /etc/portcullis \
    && ln -s /usr/local/bin/portcullis /opt/keycloak/bin/kc.sh \
    && ln -s /usr/local/bin/portcullis /opt/keycloak/bin/kcadm.sh \
    && chown -R portcullis:portcullis /opt/keycloak
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY config/portcullis.toml /etc/portcullis/portcullis.toml
COPY themes /usr/share/portcullis/themes
ENV PORTCULLIS_CONFIG=/etc/portcullis/portcullis.toml \
    PORTCULLIS_DATA_DIR=/opt/keycloak/data \
    PATH=/opt/keycloak/bin:$PATH
# The default config keeps certificates in ./certs (relative to the working directory).
WORKDIR /opt/keycloak
USER portcullis
VOLUME ["/opt/keycloak/data", "/opt/keycloak/certs"]
EXPOSE 8080 8443
HEALTHCHECK --interval=10s --timeout=2s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200' <&3"]
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]
CMD ["start"]
