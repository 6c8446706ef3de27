#!/usr/bin/env bash
# The cost of a call (issue 22): v8box's `sys.env.get`, `sys.now()` and `await sys.sleep(0)`
# against deno_core 0.318's Deno-shaped ops (bench/deno_core_peer: a sync env op, a fast op
# returning a number, an async op), in one run, the runtimes taking turns round by round.
#
#   flock /work/cargo.lock bash bench/cost.sh          # ROUNDS=7 N=200000 by default
#
# Builds both: v8box with .ci/v8-env.sh (V8 15.2, heap sandbox), the peer in its own crate and
# target dir against ../shared/rusty_v8/ (V8 12.9, `v8` 0.106.0): NOT the same V8 build.
# Prints each case's median ns per call (timed inside each runtime, around the loop) and the
# ratio of rates, v8box's / deno_core's, for --isolation=thread and --isolation=process.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-7}"
N="${N:-200000}"
# V8BOX_BIN=<path>: measure that v8box binary instead of building this checkout's (a "before").
if [ -z "${V8BOX_BIN:-}" ]; then
  (source .ci/v8-env.sh && cargo build --release --quiet)
fi
old_v8="$(cd ../shared/rusty_v8 && pwd)/librusty_v8_release_x86_64-unknown-linux-gnu.a.gz"
(cd bench/deno_core_peer && env -u RUSTY_V8_SRC_BINDING_PATH RUSTY_V8_ARCHIVE="$old_v8" \
  cargo build --release --quiet)
V8BOX="${V8BOX_BIN:-$PWD/target/release/v8box}"
PEER="$PWD/bench/deno_core_peer/target/release/deno_core_peer"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for r in $(seq "$ROUNDS"); do
  "$PEER" "$N" >> "$out/peer"
  "$V8BOX" run --isolation=thread --allow-env=HOME bench/cost.mjs "$N" >> "$out/thread"
  "$V8BOX" run --isolation=process --allow-env=HOME bench/cost.mjs "$N" >> "$out/process"
  rm -f "$out/audit.jsonl"
  "$V8BOX" run --isolation=thread --allow-env=HOME --audit="$out/audit.jsonl" bench/cost.mjs "$N" env now >> "$out/audit"
  echo "round $r of $ROUNDS done" >&2
done
median() { # file case -> median ns
  awk -v c="$2" '$1 == c { print $2 }' "$1" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
echo
echo "N = $N calls per case, median of $ROUNDS rounds; ns per call; ratio = v8box's rate / deno_core's"
echo "(deno_core 0.318 runs V8 12.9; v8box runs V8 15.2 with the heap sandbox: not the same V8 build)"
printf '%-26s %10s %10s %8s %10s %8s %8s\n' case deno_core thread ratio process ratio target
for c in env now sleep; do
  p=$(median "$out/peer" "$c"); t=$(median "$out/thread" "$c"); q=$(median "$out/process" "$c")
  case $c in
    env) name='sys.env.get / op_get_env'; target='>= 0.5' ;;
    now) name='sys.now / fast op_now'; target='>= 0.3' ;;
    sleep) name='sleep(0) / async op'; target='-' ;;
  esac
  printf '%-26s %10s %10s %8.3f %10s %8.3f %8s\n' "$name" "$p" "$t" "$(echo "$p / $t" | bc -l)" \
    "$q" "$(echo "$p / $q" | bc -l)" "$target"
done
echo
echo "audit log on / off (--isolation=thread, the same rounds; rate ratio, target >= 0.8):"
for c in env now; do
  t=$(median "$out/thread" "$c"); a=$(median "$out/audit" "$c")
  printf '%-22s %10s ns off %10s ns on %8.3f\n' "$c" "$t" "$a" "$(echo "$t / $a" | bc -l)"
done
