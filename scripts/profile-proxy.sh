#!/bin/bash
# Profile the release binary per route kind (issue 20): an nginx `return 200` upstream, the
# server with one worker thread, an open route and a bearer route; `wrk -t1 -c64` for 6 s
# per route with `perf record -F 1999 -g` attached (NOPERF=1: without), and the server's
# CPU time (utime+stime) per request. Ports 18180/18181/18443 on loopback.
#   scripts/profile-proxy.sh target/release/portcullis /tmp/prof-out
#   python3 scripts/profile-shares.py /tmp/prof-out/perf-bearer.data   # shares by layer
# Needs nginx, wrk, perf (linux-perf), curl, python3.
set -u
BIN=$1; OUT=$2; mkdir -p $OUT; cd $OUT; rm -rf data certs
pkill -f "nginx -c /tmp/prof/up.conf" 2>/dev/null
cat > /tmp/prof/up.conf <<NG
daemon off; master_process off; worker_processes 1; pid /tmp/prof/up.pid; error_log /tmp/prof/up.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path /tmp/prof/b; proxy_temp_path /tmp/prof/p; fastcgi_temp_path /tmp/prof/f; uwsgi_temp_path /tmp/prof/u; scgi_temp_path /tmp/prof/s;
 server { listen 127.0.0.1:18181 backlog=4096; location / { return 200 "ok\n"; } } }
NG
/usr/sbin/nginx -c /tmp/prof/up.conf -p /tmp/prof > /dev/null 2>&1 &
NGPID=$!
cat > portcullis.toml <<TOML
[server]
http = "127.0.0.1:18180"
https = "127.0.0.1:18443"
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
upstream = "http://127.0.0.1:18181"
[[route]]
host = "bearer.test"
upstream = "http://127.0.0.1:18181"
auth = "bearer"
realm = "bench"
client = "gateway"
TOML
PORTCULLIS_ADMIN=admin PORTCULLIS_ADMIN_PASSWORD=admin-pass-123 $BIN serve --config portcullis.toml > server.log 2>&1 &
PID=$!
for i in $(seq 50); do curl -s -o /dev/null 127.0.0.1:18180/health/ready && break; sleep 0.1; done
T=$(curl -s -X POST 127.0.0.1:18180/realms/master/protocol/openid-connect/token -d grant_type=password -d client_id=admin-cli -d username=admin -d password=admin-pass-123 | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
A="Authorization: Bearer $T"
curl -s -X POST 127.0.0.1:18180/admin/realms -H "$A" -H 'Content-Type: application/json' -d '{"realm":"bench","enabled":true,"accessTokenLifespan":3600}'
curl -s -X POST 127.0.0.1:18180/admin/realms/bench/clients -H "$A" -H 'Content-Type: application/json' -d '{"clientId":"gateway","publicClient":false,"secret":"s3cret","serviceAccountsEnabled":true}'
BT=$(curl -s -X POST 127.0.0.1:18180/realms/bench/protocol/openid-connect/token -d grant_type=client_credentials -d client_id=gateway -d client_secret=s3cret | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
for case in open bearer; do
  if [ $case = open ]; then H=(-H "Host: open.test"); else H=(-H "Host: bearer.test" -H "Authorization: Bearer $BT"); fi
  wrk -t1 -c64 -d2s "${H[@]}" http://127.0.0.1:18180/ > /dev/null
  U0=$(awk '{print $14+$15}' /proc/$PID/stat)
  if [ -z "${NOPERF:-}" ]; then perf record -F 1999 -g -p $PID -o perf-$case.data -- sleep 6 > /dev/null 2>&1 & else sleep 6 & fi
  PP=$!
  wrk -t1 -c64 -d6s "${H[@]}" http://127.0.0.1:18180/ > wrk-$case.txt
  wait $PP
  U1=$(awk '{print $14+$15}' /proc/$PID/stat)
  REQ=$(grep "requests in" wrk-$case.txt | awk '{print $1}')
  echo "$case: $(grep Requests/sec wrk-$case.txt) cpu_us_per_req=$(python3 -c "print(round(($U1-$U0)*10000/$REQ,2))") (perf attached)"
done
kill $PID $NGPID; wait 2>/dev/null
