#!/usr/bin/env bash
# Install the real OIDC / Keycloak client libraries that the end-to-end tests drive against
# Portcullis (tests/clients/): a Python venv from requirements.txt and node_modules from
# package.json / package-lock.json. Idempotent: a stamp file records a hash of the inputs
# (and of the interpreter versions), so a second run with nothing changed returns at once.
#
#   scripts/setup-clients.sh           install or update when needed
#   FORCE=1 scripts/setup-clients.sh   reinstall regardless of the stamps
#
# Needs python3 (with the venv module) and node + npm; reaches only PyPI and the npm registry.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/tests/clients"
VENV="$CLIENTS/.venv"
PY_STAMP="$VENV/.portcullis-stamp"
NODE_STAMP="$CLIENTS/node_modules/.portcullis-stamp"
FORCE="${FORCE:-0}"

die() {
  echo "setup-clients: error: $*" >&2
  exit 1
}
log() { echo "setup-clients: $*" >&2; }

[ -d "$CLIENTS" ] || die "$CLIENTS does not exist"
[ -f "$CLIENTS/requirements.txt" ] || die "missing $CLIENTS/requirements.txt"
[ -f "$CLIENTS/package.json" ] || die "missing $CLIENTS/package.json"

hash_of() {
  # Hash of the given files' contents plus any extra strings (tool versions).
  local out
  if command -v sha256sum >/dev/null 2>&1; then
    out=$( { for f in "$@"; do if [ -f "$f" ]; then cat "$f"; else printf '%s\n' "$f"; fi; done; } | sha256sum)
  else
    out=$( { for f in "$@"; do if [ -f "$f" ]; then cat "$f"; else printf '%s\n' "$f"; fi; done; } | cksum)
  fi
  echo "${out%% *}"
}

# ---------------------------------------------------------------- Python
command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
PY_VERSION="$(python3 -c 'import sys; print(sys.version)')"
py_hash="$(hash_of "$CLIENTS/requirements.txt" "python=$PY_VERSION")"

if [ "$FORCE" != "1" ] && [ -x "$VENV/bin/python" ] && [ -f "$PY_STAMP" ] \
  && [ "$(cat "$PY_STAMP")" = "$py_hash" ]; then
  log "python venv up to date"
else
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" \
      || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  log "pip install -r requirements.txt"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$CLIENTS/requirements.txt" \
    || die "pip install -r $CLIENTS/requirements.txt failed"
  # Make sure the libraries really import before declaring success.
  "$VENV/bin/python" -c 'import keycloak, flask, flask_oidc, requests, schemathesis' \
    || die "python client libraries installed but do not import"
  echo "$py_hash" >"$PY_STAMP"
  log "python clients installed"
fi

# ---------------------------------------------------------------- Node
command -v node >/dev/null 2>&1 || die "node not found (Node >= 20 required)"
command -v npm >/dev/null 2>&1 || die "npm not found"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "Node >= 20 required, found $(node --version)"
node_hash="$(hash_of "$CLIENTS/package.json" "$CLIENTS/package-lock.json" "node=$(node --version)")"

if [ "$FORCE" != "1" ] && [ -d "$CLIENTS/node_modules" ] && [ -f "$NODE_STAMP" ] \
  && [ "$(cat "$NODE_STAMP")" = "$node_hash" ]; then
  log "node_modules up to date"
else
  if [ -f "$CLIENTS/package-lock.json" ]; then
    log "npm ci"
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $CLIENTS"
  else
    log "npm install (no package-lock.json yet)"
    (cd "$CLIENTS" && npm install --no-audit --no-fund --loglevel=error >&2) || die "npm install failed in $CLIENTS"
    # package-lock.json was just written: hash again so the next run matches.
    node_hash="$(hash_of "$CLIENTS/package.json" "$CLIENTS/package-lock.json" "node=$(node --version)")"
  fi
  (cd "$CLIENTS" && node --input-type=module -e 'await import("openid-client"); await import("keycloak-connect"); await import("@keycloak/keycloak-admin-client");') \
    || die "node client libraries installed but do not import"
  echo "$node_hash" >"$NODE_STAMP"
  log "node clients installed"
fi
