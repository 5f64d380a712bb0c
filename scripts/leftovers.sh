#!/usr/bin/env bash
# After the tests: a server the tests started must not outlive them. Any still running
# (a test that lost its child, or a shutdown that hangs) is named and stopped, so that a
# leak is seen in the log instead of a core spinning until the machine is recycled. Only
# servers running in the tests' temporary directories are touched (never `make run`'s).
tmp=${TMPDIR:-/tmp}
for pid in $(pgrep -f "target/(debug|release)/portcullis serve" || true); do
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
  case "$cwd" in
    "$tmp"/.tmp*|"$tmp"/portcullis-it-*)
      echo "leftovers: a test's server outlived the tests (stopped now):" >&2
      ps -o pid,etime,pcpu,args -p "$pid" >&2 || true
      kill -9 "$pid" 2>/dev/null || true
      ;;
  esac
done
exit 0
