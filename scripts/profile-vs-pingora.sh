#!/bin/bash
# Profiles of the minimal pingora proxy (benches/proxy.rs run in its role) and of the server's open
# route under the same load: wrk -t1 -c64, 5 s each, perf record -F 2999, with CPU per request.
#   scripts/profile-vs-pingora.sh target/release/portcullis target/release/deps/proxy-<hash>
#   python3 scripts/profile-diff.py   # per symbol, µs per request, largest differences first
# Ports 18380/18381/18390 on loopback; output in /tmp/pcmp. Needs nginx, wrk, perf.
BIN=$1; BENCH=$2; OUT=/tmp/pcmp; rm -rf $OUT; mkdir -p $OUT; cd $OUT
cat > up.conf <<NG
daemon off; master_process off; worker_processes 1; pid $OUT/up.pid; error_log $OUT/up.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $OUT/b; proxy_temp_path $OUT/p; fastcgi_temp_path $OUT/f; uwsgi_temp_path $OUT/u; scgi_temp_path $OUT/s;
 server { listen 127.0.0.1:18381 backlog=4096; location / { return 200 "ok\n"; } } }
NG
/usr/sbin/nginx -c $OUT/up.conf -p $OUT > /dev/null 2>&1 &
NG=$!
cat > pc.toml <<TOML
[server]
http = "127.0.0.1:18380"
threads = 1
shutdown_grace = "0s"
[store]
data_dir = "$OUT/data"
[tls]
certs_dir = "$OUT/certs"
[log]
level = "warn"
[[route]]
host = "open.test"
upstream = "http://127.0.0.1:18381"
TOML
$BIN serve --config pc.toml > pc.log 2>&1 &
PC=$!
PROXY_BENCH_ROLE=pingora PROXY_BENCH_LISTEN=127.0.0.1:18390 PROXY_BENCH_UPSTREAM=127.0.0.1:18381 $BENCH > pg.log 2>&1 &
PG=$!
sleep 2
for c in "pingora $PG 18390" "open $PC 18380"; do
  set -- $c
  wrk -t1 -c64 -d1s -H "Host: open.test" http://127.0.0.1:$3/ > /dev/null
  U0=$(awk '{print $14+$15}' /proc/$2/stat)
  perf record -F 2999 -p $2 -o perf-$1.data -- sleep 5 > /dev/null 2>&1 &
  PP=$!
  wrk -t1 -c64 -d5s -H "Host: open.test" http://127.0.0.1:$3/ > wrk-$1.txt
  wait $PP
  U1=$(awk '{print $14+$15}' /proc/$2/stat)
  REQ=$(grep "requests in" wrk-$1.txt | awk '{print $1}')
  echo "$1 $REQ $(python3 -c "print(round(($U1-$U0)*10000/$REQ,2))")" >> cpu.txt
done
kill $PC $PG $NG; wait 2>/dev/null
cat cpu.txt
