#!/usr/bin/env bash
# GPU check: one prepared run of the portable bundle on a GPU machine (made for an NVIDIA H100/H200
# with no Node and no network, inside a 10-minute command limit). In order, each step with its own
# timeout and all of them inside one time budget, so one hang cannot eat the rest:
#   1. the machine: date, nvidia-smi, Vulkan manifests, the bundle's build-info and run.sh env;
#      then `selftest --json` (60 s at most): the real subgroup-matrix GEMMs against the f32 kernels
#      and float64 references (fails on an adapter that advertises the feature and disagrees; the
#      emulated twins, saying so, elsewhere) and the dispatch gap (1,000 dependent dispatches
#      between two timestamps, us per dispatch); then `bench --profile` of a 16-token decode step
#   2. adapter report, with no Dawn toggles and with the engine's (limits, features,
#      subgroupMatrixConfigs), plus a tiny compute and subgroupAdd check on a device
#   3. the oracle models' greedy tokens (tiny-e32k4, tiny-e64k2, tiny-e128k4) against the manifests
#   4. bench --json: synthetic:20b (prompt 512, gen 128), a 4K-prompt prefill, 16 streams at once,
#      top-p decode, synthetic:120b, 64 streams, a long-context decode (--context 32768
#      --prompt-tokens 32000), a prefix-cache hit, a --profile run of 20b, then speculative decoding
#      (20b with n-gram proposals, 120b with 20b as its draft), while time is left
# If the adapter turns out to be a CPU one (llvmpipe) on a full run, the 20b/120b steps are skipped.
#
# Usage: gpu-check.sh [--quick] [--bundle DIR] [--oracle DIR] [--budget SECONDS]
#   --quick      small synthetic models (mini/tiny) instead of 20b/120b: for CPU/lavapipe trials
#                (or GPU_CHECK_QUICK=1)
#   --bundle     the bundle folder (default: this script's folder when run.sh is beside it, else
#                ../bundle next to this script's folder; or GPU_CHECK_BUNDLE)
#   --oracle     folder of <model>/{hf,manifest.json} (default: $ORACLE_DIR, else <bundle>/oracle,
#                else ../shared/oracle beside the repository)
#   --budget     total seconds for all steps (default 540, or GPU_CHECK_BUDGET_S)
# Output: everything goes to stdout and to $OUT/gpu-check.log ($OUT, else ./gpu-check-out);
# $OUT/gpu-check.jsonl gets one JSON object per step ({step, status, rc, seconds, cmd, result});
# $OUT/adapter-report.json the adapter report. Exit status: 0 when no step failed or timed out.
#
# Through the device tool (the bundle is ignored by git, so carry it):
#   npm run bundle   # here, first
#   run(command="bash bundle/gpu-check.sh", carry=["bundle"], timeout_s=600)
set -uo pipefail

QUICK=${GPU_CHECK_QUICK:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-540}
BUNDLE=${GPU_CHECK_BUNDLE:-}
ORACLE=${ORACLE_DIR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --bundle) BUNDLE=$2; shift ;;
    --oracle) ORACLE=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

here=$(cd "$(dirname "$0")" && pwd -P)
if [ -z "$BUNDLE" ]; then
  if [ -x "$here/run.sh" ]; then BUNDLE=$here; else BUNDLE=$here/../bundle; fi
fi
BUNDLE=$(cd "$BUNDLE" 2>/dev/null && pwd -P) || { echo "gpu-check.sh: no bundle folder (npm run bundle)" >&2; exit 2; }
RUN=$BUNDLE/run.sh
[ -x "$RUN" ] || { echo "gpu-check.sh: $RUN is missing (npm run bundle)" >&2; exit 2; }
if [ -z "$ORACLE" ]; then
  for d in "$BUNDLE/oracle" "$here/../../shared/oracle" "$BUNDLE/../../shared/oracle"; do
    if [ -d "$d" ]; then ORACLE=$(cd "$d" && pwd -P); break; fi
  done
fi

OUTDIR=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/gpu-check.log
JSONL=$OUTDIR/gpu-check.jsonl
: >"$LOG"
: >"$JSONL"
exec > >(tee -a "$LOG") 2>&1

START=$(date +%s)
FAILED=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

say() { printf '\n=== %s\n' "$*"; }
elapsed() { echo $(($(date +%s) - START)); }

# JSON helpers, through the bundled Node (the machine may have none of its own).
json_compact() { "$RUN" node -e 'process.stdout.write(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8"))))' <"$1" 2>/dev/null; }
json_str() { "$RUN" node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }

# record STEP STATUS RC SECONDS CMD [RESULT_FILE]
record() {
  local result=null
  if [ -n "${6:-}" ] && [ -s "$6" ]; then result=$(json_compact "$6") || result=null; fi
  printf '{"step":%s,"status":"%s","rc":%s,"seconds":%s,"cmd":%s,"result":%s}\n' \
    "$(json_str "$1")" "$2" "$3" "$4" "$(json_str "$5")" "$result" >>"$JSONL"
}

# step NAME TIMEOUT_S MIN_S -- CMD...: runs CMD under timeout (clipped to the budget left); its
# stdout goes to $TMP/NAME.out and the log. Sets STEP_STATUS (ok|fail|timeout|skipped), STEP_OUT.
step() {
  local name=$1 limit=$2 min=$3
  shift 4
  local left=$((BUDGET - $(elapsed) - 10))
  STEP_OUT=$TMP/$name.out
  : >"$STEP_OUT"
  say "$name: $* (timeout ${limit}s, ${left}s of budget left)"
  if [ "$left" -lt "$min" ]; then
    STEP_STATUS=skipped
    echo "skipped: less than ${min}s of the budget left"
    record "$name" skipped null 0 "$*"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0 rc
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$STEP_OUT"
  rc=$?
  local secs=$(($(date +%s) - t0))
  cat "$STEP_OUT"
  echo
  case $rc in
    0) STEP_STATUS=ok ;;
    124 | 137) STEP_STATUS=timeout; FAILED=$((FAILED + 1)) ;;
    *) STEP_STATUS=fail; FAILED=$((FAILED + 1)) ;;
  esac
  echo "--- $name: $STEP_STATUS (rc $rc, ${secs}s)"
  record "$name" "$STEP_STATUS" "$rc" "$secs" "$*" "$STEP_OUT"
}

# --- 1. the machine -------------------------------------------------------------------------------
say "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null || echo '?'); quick=$QUICK budget=${BUDGET}s"
uname -a
echo "bundle: $BUNDLE"
echo "oracle: ${ORACLE:-none}"
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
else
  echo "nvidia-smi: not found"
fi
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d; do
  [ -d "$d" ] && echo "$d: $(ls "$d" 2>/dev/null | tr '\n' ' ')"
done
command -v ldconfig >/dev/null 2>&1 && { ldconfig -p 2>/dev/null | grep -E 'libvulkan|libGLX_nvidia|libnvidia-glcore' || echo "ldconfig: no libvulkan/libGLX_nvidia in the cache"; }
[ -f "$BUNDLE/build-info.json" ] && { echo "build-info:"; cat "$BUNDLE/build-info.json"; }
say "run.sh env"
timeout 120 "$RUN" env || { echo "run.sh env failed"; exit 1; }

# first, and short: a tensor-core kernel that cannot compile or disagrees shows before any figure
step selftest 60 20 -- "$RUN" selftest --json
# second, so a late budget cannot skip it: where a 16-token decode step spends its time, per kernel
if [ "$QUICK" = 1 ]; then
  step profile-16 120 30 -- "$RUN" bench --model synthetic:tiny --concurrency 16 --prompt-tokens 32 --gen-tokens 8 --json --profile
else
  step profile-16 120 45 -- "$RUN" bench --model synthetic:20b --layers 4 --concurrency 16 --prompt-tokens 64 --gen-tokens 8 --json --profile
fi

# --- 2. adapter report ---------------------------------------------------------------------------
step adapter-report 90 20 -- "$RUN" adapter-report
cp "$STEP_OUT" "$OUTDIR/adapter-report.json" 2>/dev/null || true
ADAPTER=$("$RUN" node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const c = r.configs.find((c) => c.name === "engine-toggles" && c.adapter) || r.configs.find((c) => c.adapter);
  const i = (c && c.adapter.info) || {};
  process.stdout.write([i.vendor, i.architecture, i.device, i.description].join(" | "));
' "$STEP_OUT" 2>/dev/null)
echo "adapter: ${ADAPTER:-none}"
CPU_ADAPTER=0
case "$ADAPTER" in *llvmpipe* | *lavapipe* | *software* | *SwiftShader* | "") CPU_ADAPTER=1 ;; esac
if [ "$CPU_ADAPTER" = 1 ] && [ "$QUICK" != 1 ]; then
  echo "WARNING: no GPU adapter (got: ${ADAPTER:-none}); the Vulkan loader's driver search:"
  VK_LOADER_DEBUG=driver timeout 60 "$RUN" adapter-report --no-device --compact 2>&1 | grep -iE 'icd|driver|json|error' | head -40
fi

# --- 3. oracle tokens ----------------------------------------------------------------------------
ORACLE_PASS=0
ORACLE_TOTAL=0
for m in tiny-e32k4 tiny-e64k2 tiny-e128k4; do
  man=${ORACLE:+$ORACLE/$m/manifest.json}
  if [ -z "$man" ] || [ ! -f "$man" ]; then
    say "oracle-$m: no manifest under ${ORACLE:-(no oracle folder)}"
    record "oracle-$m" skipped null 0 "(oracle missing)"
    continue
  fi
  ids=$("$RUN" node -e 'process.stdout.write(require(process.argv[1]).prompt_ids.join(","))' "$man")
  n=$("$RUN" node -e 'process.stdout.write(String(require(process.argv[1]).generated_ids.length))' "$man")
  ORACLE_TOTAL=$((ORACLE_TOTAL + 1))
  step "oracle-$m" 120 15 -- "$RUN" generate --model "$ORACLE/$m/hf" --prompt-ids "$ids" --max-tokens "$n" --json --stats
  if [ "$STEP_STATUS" = ok ]; then
    if "$RUN" node -e '
      const fs = require("fs");
      const want = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).generated_ids;
      const got = JSON.parse(fs.readFileSync(process.argv[2], "utf8")).generated_ids;
      const same = JSON.stringify(want) === JSON.stringify(got);
      let first = -1;
      for (let i = 0; i < want.length && first < 0; i++) if (want[i] !== got[i]) first = i;
      console.log(same ? "tokens: MATCH (" + got.length + ")" : "tokens: MISMATCH at " + first + "\n  want " + want + "\n  got  " + got);
      process.exit(same ? 0 : 1);
    ' "$man" "$STEP_OUT"; then
      ORACLE_PASS=$((ORACLE_PASS + 1))
      record "oracle-$m-tokens" ok 0 0 "compare generated_ids with $man"
    else
      FAILED=$((FAILED + 1))
      record "oracle-$m-tokens" fail 1 0 "compare generated_ids with $man"
    fi
  fi
done
say "oracle: $ORACLE_PASS of $ORACLE_TOTAL models gave the reference tokens"

# --- 4. benchmarks -------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  step bench-mini 120 20 -- "$RUN" bench --model synthetic:mini --prompt-tokens 64 --gen-tokens 16 --json
  step bench-tiny 180 30 -- "$RUN" bench --model synthetic:tiny --prompt-tokens 64 --gen-tokens 16 --json
  step bench-mini-long 180 30 -- "$RUN" bench --model synthetic:mini --context 1024 --prompt-tokens 960 --gen-tokens 8 --json
  step bench-mini-draft 120 20 -- "$RUN" bench --model synthetic:mini,layers=4,zero-from=2 --draft-model synthetic:mini --prompt-tokens 64 --gen-tokens 32 --json
elif [ "$CPU_ADAPTER" = 1 ]; then
  say "benchmarks skipped: no GPU adapter"
  record bench skipped null 0 "(no GPU adapter: $ADAPTER)"
  FAILED=$((FAILED + 1))
else
  # in order of what a figure is worth: batch-1 decode and prefill, prefill of a 4K prompt (issue 9),
  # many streams at once (issue 10), top-p decode through the sampler (issue 11), the 120b, long
  # context, the prefix cache, then the per-kernel profile
  step bench-20b 150 60 -- "$RUN" bench --model synthetic:20b --prompt-tokens 512 --gen-tokens 128 --json
  step bench-20b-4k 90 45 -- "$RUN" bench --model synthetic:20b --prompt-tokens 4096 --gen-tokens 16 --json
  step bench-20b-c16 120 60 -- "$RUN" bench --model synthetic:20b --concurrency 16 --prompt-tokens 512 --gen-tokens 64 --json
  step bench-20b-topp 90 45 -- "$RUN" bench --model synthetic:20b --prompt-tokens 512 --gen-tokens 64 --temperature 1 --top-p 0.9 --seed 1 --json
  step bench-120b 150 90 -- "$RUN" bench --model synthetic:120b --prompt-tokens 512 --gen-tokens 128 --json
  step bench-20b-c64 120 60 -- "$RUN" bench --model synthetic:20b --concurrency 64 --prompt-tokens 256 --gen-tokens 64 --json
  step bench-20b-32k 150 90 -- "$RUN" bench --model synthetic:20b --context 32768 --prompt-tokens 32000 --gen-tokens 32 --json
  step bench-20b-prefix 90 45 -- "$RUN" bench --model synthetic:20b --prompt-tokens 2048 --prefix-tokens 2016 --gen-tokens 8 --json
  step bench-20b-profile 90 60 -- "$RUN" bench --model synthetic:20b --prompt-tokens 512 --gen-tokens 32 --json --profile
  # speculative decoding (issue 22): n-gram on 20b, then 120b with 20b as its draft (a small
  # context so both fit an H100 beside each other)
  step bench-20b-ngram 90 45 -- "$RUN" bench --model synthetic:20b --speculative ngram --prompt-tokens 512 --gen-tokens 64 --json
  step bench-120b-draft 150 90 -- "$RUN" bench --model synthetic:120b --draft-model synthetic:20b --context 1024 --prompt-tokens 512 --gen-tokens 64 --json
fi

# --- summary -------------------------------------------------------------------------------------
say "summary ($(elapsed)s): $FAILED failed/timed-out step(s); oracle $ORACLE_PASS/$ORACLE_TOTAL"
"$RUN" node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  for (const s of lines) {
    const r = s.result || {};
    const fig = r.roofline_fraction !== undefined
      ? ` decode ${r.decode_tokens_per_s} tok/s, prefill ${r.prefill_tokens_per_s} tok/s, ttft ${r.ttft_ms} ms, load ${r.load_s} s, bw ${r.bandwidth_gb_per_s} GB/s, roofline ${r.roofline_fraction}` +
        (r.concurrency > 1 ? `, ${r.concurrency} streams: ${r.aggregate_output_tokens_per_s} tok/s together` : "") +
        (r.prefix_cache ? `, ttft ${r.prefix_cache.ttft_ms_cached} ms with ${r.prefix_cache.cached_tokens} cached vs ${r.prefix_cache.ttft_ms_uncached} ms` : "") +
        (r.speculative ? `, ${r.speculative.method} acceptance ${r.spec_acceptance_rate}, ${r.accepted_tokens_per_step} tokens/step` : "")
      : r.generated_ids !== undefined ? ` ${r.generated_ids.length} tokens, decode ${r.decode_tokens_per_s} tok/s`
      : r.subgroup_matrix ? ` subgroup matrix ${r.subgroup_matrix.exercised}: ${r.subgroup_matrix.used ? "used" : "not used"} (${r.subgroup_matrix.reason})` +
        (r.dispatch_gap ? `; dispatch gap ${r.dispatch_gap.usPerDispatch.toFixed(2)} us` : "") : "";
    console.log(`${s.step.padEnd(26)} ${s.status.padEnd(8)} ${String(s.seconds).padStart(4)}s${fig}`);
  }
' "$JSONL" || true
echo "log: $LOG"
[ "$FAILED" = 0 ]
