#!/usr/bin/env bash
# One short run on a machine with a real GPU (Vulkan or Metal): is wgarray
# exact there, and how fast is it? Runs the golden / oracle tests (ggml's and
# llama.cpp's own bytes), the quantize bench, the e2e bench and the
# e2e --vs-llama bench, then prints one table. Usable on lavapipe too (it says
# so: the adapter column shows "llvmpipe").
#
#   bash bench/gpu-check.sh [--quick]     # --quick: smaller inputs, one type (~3-5 min on a GPU)
#
# Environment: WGARRAY_ADAPTER / WGARRAY_BACKEND pick the adapter (see README);
# GPU_CHECK_TIMEOUT (seconds per step, default 600); GPU_CHECK_OUT (folder for
# the logs, default a new temporary folder). Exit status: 0 when every exactness
# test passed, 1 otherwise (the benches never fail the check).
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
out="${GPU_CHECK_OUT:-$(mktemp -d -t wgarray-gpu-check-XXXXXX)}"
mkdir -p "$out"
limit="${GPU_CHECK_TIMEOUT:-600}"
export WGARRAY_REQUIRE_ORACLES=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

echo "== gpu-check: logs in $out"
{
  uname -srm
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|driverName|apiVersion' | head -6
  [ "$(uname)" = Darwin ] && system_profiler SPDisplaysDataType 2>/dev/null | grep -E 'Chipset|Metal' | head -3
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

if [ ! -d dist/src ] || [ ! -d node_modules ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund > "$out/npm-ci.log" 2>&1 || { echo "npm ci failed: see $out/npm-ci.log"; exit 1; }
fi
npm run build --silent > "$out/build.log" 2>&1 || { echo "build failed: see $out/build.log"; exit 1; }

# step NAME COMMAND...: runs with the time limit, logs, records status and seconds
declare -A status secs
step() {
  local name="$1"; shift
  echo "== $name: $*"
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  secs[$name]=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then status[$name]=ok; elif [ $rc -eq 124 ]; then status[$name]="timed out (${limit}s)"; else status[$name]="FAILED (exit $rc)"; fi
  echo "   ${status[$name]} in ${secs[$name]} s"
}

# exactness: every format against ggml's golden bytes and ggml/llama.cpp's own quantizers
step exact-golden npx vitest run test/quant-golden.test.ts test/quant-kquant-ggml.test.ts test/quant-large.test.ts
step exact-llama npx vitest run test/llama-quantize.test.ts test/pipeline.test.ts
if [ $quick = 1 ]; then
  step bench-quantize node dist/bench/run.js quantize --runs 3 --size 2048x4096 --types q8_0,q4_0,q4_K,q6_K --json
  step bench-e2e node dist/bench/run.js e2e --size 256m --json
  step bench-vs-llama node dist/bench/run.js e2e --vs-llama --types Q4_K_M --json
else
  step bench-quantize node dist/bench/run.js quantize --runs 5 --json
  step bench-e2e node dist/bench/run.js e2e --size 1g --json
  step bench-vs-llama node dist/bench/run.js e2e --vs-llama --runs 2 --json
fi

# one table from the logs
node --input-type=module - "$out" <<'EOF'
import { readFileSync, existsSync } from 'node:fs';
const out = process.argv[2];
const log = (n) => (existsSync(`${out}/${n}.log`) ? readFileSync(`${out}/${n}.log`, 'utf8') : '');
const lastJson = (text, key) => {
  for (const line of text.split('\n').reverse()) {
    const s = line.trim();
    if (!s.startsWith('{') && !s.startsWith('[')) continue;
    try { const v = JSON.parse(s); if (!key || (v && key in v)) return v; } catch {}
  }
  return undefined;
};
const tests = (n) => {
  const m = /Tests\s+(?:\x1b\[[0-9;]*m)*\s*(.*?)\(\d+\)/s.exec(log(n).replace(/\x1b\[[0-9;]*m/g, ''));
  return m ? m[1].replace(/\s+/g, ' ').trim() : 'see log';
};
const rows = [['check', 'result']];
rows.push(['adapter', (/on (.*)$/m.exec(log('bench-e2e').split('\n').find((l) => l.startsWith('e2e:')) ?? '') ?? [])[1] ?? 'see machine.txt']);
rows.push(['golden + ggml oracle tests', tests('exact-golden')]);
rows.push(['llama.cpp oracle + pipeline tests', tests('exact-llama')]);
const q = lastJson(log('bench-quantize'));
if (Array.isArray(q)) for (const r of q.filter((r) => r.path === 'webgpu')) rows.push([`quantize ${r.type}`, `${r.melem_per_s} M elem/s`]);
else rows.push(['quantize bench', 'no result (see log)']);
const e = lastJson(log('bench-e2e'), 'wallMs');
if (e) rows.push(['e2e convert (wall, peak RSS)', `${(e.wallMs / 1000).toFixed(1)} s, ${(e.peakRss / 2 ** 20).toFixed(0)} MiB (budget ${(e.budget / 2 ** 20).toFixed(0)})`]);
else rows.push(['e2e bench', 'no result (see log)']);
const v = lastJson(log('bench-vs-llama'), 'vs_llama');
if (v) for (const r of v.vs_llama) rows.push([`vs llama.cpp ${r.type}`, `${r.wgarray_s.toFixed(2)} s vs ${r.llama_s.toFixed(2)} s: ${r.ratio.toFixed(2)}x, same tensors ${r.same_tensors ? 'yes' : 'NO'}, GPU ${(r.gpu_ms / 1000).toFixed(2)} s of ${(r.total_ms / 1000).toFixed(2)} s`]);
else rows.push(['vs llama.cpp', 'no result (see log)']);
const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
console.log('\n' + rows.map((r, i) => r.map((x, c) => String(x).padEnd(w[c])).join('  ') + (i === 0 ? '\n' + w.map((n) => '-'.repeat(n)).join('  ') : '')).join('\n'));
EOF

for s in exact-golden exact-llama; do
  [ "${status[$s]}" = ok ] || { echo "exactness check $s: ${status[$s]} (see $out/$s.log)"; exit 1; }
done
echo "every exactness check passed; logs in $out"
