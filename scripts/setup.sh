#!/usr/bin/env bash
# Install what building and testing Portcullis needs on a fresh Debian machine, skipping
# anything already present. Safe to run repeatedly; `make run` and `make test` call it.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)        # pingora's zlib-ng build
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# Real clients in the end-to-end tests: Node.js (openid-client, keycloak-js, keycloak-connect),
# Python (python-keycloak, Flask-OIDC) and Debian's Chromium (keycloak-js in a real browser).
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Other proxies calling our forward-auth endpoint in the tests, and the benchmark baseline.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
# The load generator of the benchmark harness (its smoke run is part of `make test`).
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# A real directory for the LDAP federation tests (started by the tests on a free port).
[ -x /usr/sbin/slapd ] || need_apt+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need_apt+=(ldap-utils)
# The PostgreSQL store backend's tests start their own server (scripts/with-postgres.sh).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
