#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL server: Debian's `postgresql` binaries, a
# temporary data directory, a free port on 127.0.0.1, trust authentication for the
# current user on loopback only. The command sees PORTCULLIS_TEST_POSTGRES (a URL of the
# `postgres` database; tests create a database of their own from it) and
# PORTCULLIS_TEST_PG_CTL / PORTCULLIS_TEST_PGDATA (to stop and start the server in the
# tests that take the database away). The server is stopped however the command ends.
#
#   scripts/with-postgres.sh cargo test --all-targets
set -euo pipefail

bin=""
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && bin="$d"
done
if [ -z "$bin" ]; then
    echo "with-postgres: no PostgreSQL server found (apt-get install postgresql; scripts/setup.sh does)" >&2
    exit 1
fi

dir=$(mktemp -d /tmp/portcullis-pg.XXXXXX)
user=$(id -un)
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: run it as the unprivileged `postgres` user Debian's
    # package creates, which owns the directory.
    user=postgres
    chown postgres "$dir"
    as() { runuser -u postgres -- "$@"; }
else
    as() { "$@"; }
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
    as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

as "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
log_min_messages = warning
EOF
as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }

export PORTCULLIS_TEST_POSTGRES="postgres://$user@127.0.0.1:$port/postgres"
export PORTCULLIS_TEST_PG_CTL="$bin/pg_ctl"
export PORTCULLIS_TEST_PGDATA="$dir/data"
export PORTCULLIS_TEST_PG_AS="$user"
"$@"
