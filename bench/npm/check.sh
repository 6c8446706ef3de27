#!/usr/bin/env bash
# Optional manual check (needs the npm registry; the tests never do): installs the eight
# libraries of issue 20 into a temporary folder and runs bench/npm/eight.js with v8box
# unbundled, in both isolations, beside Node for comparison.
#   bash bench/npm/check.sh [path/to/v8box]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
v8box="${1:-$here/../../target/release/v8box}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
npm install --silent --no-audit --no-fund marked zod date-fns lodash-es fast-xml-parser ajv handlebars yaml
cp "$here/eight.js" eight.mjs
cp "$here/eight.js" eight.js
for mode in process thread; do
  "$v8box" run --isolation=$mode eight.js > "v8box-$mode.txt"
done
if command -v node >/dev/null; then
  node eight.mjs > node.txt
  diff node.txt v8box-process.txt && diff node.txt v8box-thread.txt && echo "v8box prints what Node prints (both isolations)"
else
  cat v8box-process.txt
fi
