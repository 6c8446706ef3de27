#!/usr/bin/env bash
# B4/B5 side by side: the same work (bench/work.mjs) in v8box, Deno and Node, in one run.
#
#   bash bench/compare.sh
#
# v8box runs twice: in its default process isolation and with --isolation=thread (the last
# column is their ratio). Installs Deno from the npm registry (package `deno`) into bench/.peers if it is missing; Node is
# the machine's. Prints one table: each case's time in each runtime (measured inside the runtime,
# median of 5, the runtimes taking turns so that a slow spell of the machine hits all three) and
# v8box's time as a fraction of Deno's; then process start-up (`hello`, wall clock, median of 10)
# and a fresh Node `vm` context.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/v8-env.sh
cargo build --release --quiet
V8BOX="$PWD/target/release/v8box"
NODE="$(command -v node || true)"
if [ -z "$NODE" ]; then
  echo "compare.sh: Node is not installed; it is a peer in the table, and npm installs Deno." >&2
  echo "Install Node 18 or later (node and npm on PATH) and run again." >&2
  exit 1
fi
DENO="$(command -v deno || true)"
if [ -z "$DENO" ]; then
  if [ ! -x bench/.peers/node_modules/.bin/deno ]; then
    command -v npm >/dev/null || { echo "compare.sh: Deno is missing and npm is not on PATH to install it (npm install deno)." >&2; exit 1; }
    npm install --silent --prefix bench/.peers deno >/dev/null
  fi
  DENO="$PWD/bench/.peers/node_modules/.bin/deno"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
head -c 1024 /dev/urandom > "$work/one-kib.txt"
script="$PWD/bench/work.mjs"

run() { # runtime case -> ms
  local rt=$1 case=$2
  rm -rf "$work/out" && mkdir -p "$work/out"
  # The last run's 10,000 deleted files are still being freed; without this, the next run's
  # file creation varied 5x depending on what ran before it.
  sync
  case $rt in
    v8box) "$V8BOX" run --allow-read="$work" --allow-write="$work" --allow-env=HOME "$script" "$case" "$work" ;;
    v8box-thread) "$V8BOX" run --isolation=thread --allow-read="$work" --allow-write="$work" --allow-env=HOME "$script" "$case" "$work" ;;
    deno) "$DENO" run --quiet --allow-read="$work" --allow-write="$work" --allow-env=HOME "$script" "$case" "$work" ;;
    node) "$NODE" "$script" "$case" "$work" ;;
  esac | awk '{print $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); deno $("$DENO" --version | head -1 | cut -d' ' -f2), node $("$NODE" --version)"
echo
printf '| %-20s | %10s | %12s | %10s | %10s | %14s | %16s |\n' case "v8box ms" "thread ms" "deno ms" "node ms" "v8box / deno" "process / thread"
printf '| %-20s | %10s | %12s | %10s | %10s | %14s | %16s |\n' --- --- --- --- --- --- ---
for case in reads-sequential reads-64-in-flight write-10k-files timers-10k env-get-100k; do
  declare -A t=([v8box]="" [v8box-thread]="" [deno]="" [node]="")
  for _ in 1 2 3 4 5; do
    for rt in v8box v8box-thread deno node; do
      t[$rt]+="$(run "$rt" "$case")"$'\n'
    done
  done
  for rt in v8box v8box-thread deno node; do
    t[$rt]=$(printf '%s' "${t[$rt]}" | median)
  done
  ratio=$(awk -v a="${t[v8box]}" -v b="${t[deno]}" 'BEGIN {printf "%.2f", a / b}')
  iso=$(awk -v a="${t[v8box]}" -v b="${t[v8box-thread]}" 'BEGIN {printf "%.2f", a / b}')
  printf '| %-20s | %10s | %12s | %10s | %10s | %14s | %16s |\n' "$case" "${t[v8box]}" "${t[v8box-thread]}" "${t[deno]}" "${t[node]}" "$ratio" "$iso"
done
echo
startup() { # command... -> median wall ms of 10 runs
  for _ in $(seq 10); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done | median | awk '{printf "%.1f", $1 / 1000}'
}
echo "| start-up (process, hello) | ms |"
echo "| --- | --- |"
echo "| v8box run (--isolation=process, the default) | $(startup "$V8BOX" run "$script" hello "$work") |"
echo "| v8box run --isolation=thread | $(startup "$V8BOX" run --isolation=thread "$script" hello "$work") |"
echo "| deno run | $(startup "$DENO" run --quiet "$script" hello "$work") |"
echo "| node | $(startup "$NODE" "$script" hello "$work") |"
vm_ms=$("$NODE" -e "const vm=require('vm');const n=200;const s=process.hrtime.bigint();for(let i=0;i<n;i++){vm.runInNewContext('1+1')}console.log((Number(process.hrtime.bigint()-s)/1e6/n).toFixed(2))")
echo "| node vm.runInNewContext (in-process, per context) | $vm_ms |"
