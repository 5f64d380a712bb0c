# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: run dev test setup lint bench bench-startup bench-tokens bench-broker bench-ldap bench-load bench-micro bench-scale bench-reliability bench-console bench-cluster

CARGO ?= cargo

setup:
	@scripts/setup.sh

# Run the server on the embedded default configuration (config/portcullis.toml):
# http://localhost:8080, https://localhost:8443, data in ./data. Set PORTCULLIS_ADMIN and
# PORTCULLIS_ADMIN_PASSWORD to create the first administrator.
run: setup
	$(CARGO) run --release -- serve --config config/portcullis.toml

# The same, unoptimised build (faster to compile).
dev: setup
	$(CARGO) run -- serve --config config/portcullis.toml

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Everything CI runs: formatting, lints, unit and end-to-end tests, then the unit and
# end-to-end tests again on the PostgreSQL backend (a throw-away server for both runs).
test: setup lint
	scripts/with-postgres.sh sh -c '$(CARGO) test --all-targets && PORTCULLIS_TEST_STORE=postgres $(CARGO) test --lib --test it'
	@scripts/leftovers.sh

# Start-up time and idle memory of the release binary.
bench-startup: setup
	$(CARGO) bench --bench startup

bench-tokens: setup
	$(CARGO) bench --bench tokens

# A brokered login beside a local-password login (a GitHub-style provider on loopback).
bench-broker: setup
	$(CARGO) bench --bench broker

# LDAP-backed logins beside local ones, and a full sync of 10,000 entries (slapd).
bench-ldap: setup
	$(CARGO) bench --bench ldap

# The proxy beside nginx, a minimal pingora and a minimal hyper proxy (interleaved rounds,
# CPU per request), then the rest of the load harness (tokens, TLS, memory).
bench-load: setup
	$(CARGO) bench --bench proxy
	$(CARGO) bench --bench load

# 10,000 idle keep-alive connections (memory per connection, beside nginx) and a 10-minute
# soak of mixed login, refresh and proxy traffic (errors, memory over time).
bench-reliability: setup
	$(CARGO) bench --bench reliability

# The store backends side by side: one node on redb, one on PostgreSQL, three sharing it.
bench-cluster: setup
	$(CARGO) bench --bench cluster

bench-micro: setup
	$(CARGO) bench --bench micro

# Admin console pages at 1,000,000 users and 500 realms (server time and bytes per page).
bench-console: setup
	CONSOLE_USERS=1000000 CONSOLE_REALMS=500 $(CARGO) bench --bench console

# The admin API at 1,000,000 users (import, count, pages, searches).
bench-scale: setup
	SCALE_USERS=1000000 $(CARGO) bench --bench scale

bench: bench-micro bench-startup bench-tokens bench-broker bench-ldap bench-load bench-scale bench-reliability bench-console bench-cluster
