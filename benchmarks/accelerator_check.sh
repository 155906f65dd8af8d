#!/usr/bin/env bash
# One prepared accelerator check (issue 15): environment, correctness on the device,
# speed side by side with the peer, and a real run. Prints one JSON line per check
# (`{"check": ..., "ok": true|false, ...}`) on stdout; logs go to $ACC_OUT_DIR.
#
#   bash benchmarks/accelerator_check.sh          # full sizes, one GPU, under 8 minutes
#   bash benchmarks/accelerator_check.sh --tiny   # CPU-sized (tests/test_accelerator_check.py)
#   SIZE=tiny bash benchmarks/accelerator_check.sh  # the same
#   ONLY="env attention" bash benchmarks/accelerator_check.sh  # a subset, same budgets
#
# Decisions (benchmarks/README.md, "accelerator check", has the details):
# - The logic is in benchmarks/accelerator_check.py (one subcommand per check); this
#   file only installs carried wheels, orders the checks, enforces budgets and
#   collects the lines. A failing check prints its line with ok false and the error;
#   the script goes on and exits 1 at the end if any line has ok false.
# - Wheels: if ${WHEELS_DIR:-benchmarks/wheels} holds *.whl, each distribution is
#   installed first by name with `pip install --no-index --no-deps --find-links`
#   (e.g. gin-config for a lean GPU image); the packages line lists the outcome.
# - Budget (full mode): ${BUDGET_S:-470} s in all (the issue allows 480). Seconds per
#   check, in run order: env 25, attention 40, decode 30, bf16_vs_f32 35,
#   real_run 110, decode_speed 25, speed 110, input 20, peer 65, ratio 10. A check's `timeout`
#   is what is left minus the budgets of the checks after it, so time saved early
#   goes to the speed matrix (last, cut from its low-priority tail by its own budget).
# - The peer is ${PEER_BENCH:-benchmarks/peer/hf_t5_bench.py} (git-ignored copy of
#   ../shared/bench/hf_t5_bench.py; carry it to the device), else ../shared/bench/.
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-$(command -v python || command -v python3)}

SIZE=${SIZE:-full}
for arg in "$@"; do
  case "$arg" in
    --tiny) SIZE=tiny ;;
    *) echo "unknown argument: $arg (use --tiny or SIZE=tiny)" >&2; exit 2 ;;
  esac
done
TINY_FLAG=()
if [ "$SIZE" = tiny ]; then
  TINY_FLAG=(--tiny)
  BUDGET_S=${BUDGET_S:-900}  # CPU: no promise but a ceiling (~3-5 min measured)
fi
BUDGET_S=${BUDGET_S:-470}
OUT_DIR=${ACC_OUT_DIR:-${OUT:-$(mktemp -d /tmp/accelerator_check.XXXXXX)}}
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/accelerator_check.jsonl"
# A persistent XLA cache outside $OUT_DIR (which comes back from the device): the real
# run's resume then loads the train step its first process compiled.
# A fixed path, so a rerun on a machine that is still warm loads instead of compiling.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/acc_xla_cache}
: > "$RESULTS"
START=$(date +%s)

# name:budget_s, in run order.
if [ "$SIZE" = tiny ]; then
  CHECKS=(env:120 attention:240 decode:240 bf16_vs_f32:240 real_run:400 decode_speed:200
          speed:300 input:120 peer:60 ratio:60)
else
  CHECKS=(env:25 attention:40 decode:30 bf16_vs_f32:35 real_run:110 decode_speed:25
          speed:110 input:20 peer:65 ratio:10)
fi

json_line() {  # check ok message -> a JSON line on stdout and in $RESULTS
  "$PY" -c 'import json, sys; print(json.dumps({"check": sys.argv[1], "ok": sys.argv[2] == "true", "error": sys.argv[3]}))' \
    "$1" "$2" "$3" | tee -a "$RESULTS"
}

# Carried wheels first (nothing is downloaded here), each distribution by name so that a
# wheel built for another Python is skipped, not fatal.
WHEELS_DIR=${WHEELS_DIR:-benchmarks/wheels}
ACC_WHEELS_INSTALLED=""
if compgen -G "$WHEELS_DIR/*.whl" > /dev/null; then
  for dist in $(cd "$WHEELS_DIR" && ls *.whl | sed 's/-.*//' | sort -u); do
    if "$PY" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS_DIR" \
        "$dist" >> "$OUT_DIR/wheels.log" 2>&1; then
      ACC_WHEELS_INSTALLED="$ACC_WHEELS_INSTALLED$dist "
    else
      ACC_WHEELS_INSTALLED="$ACC_WHEELS_INSTALLED$dist(failed) "
    fi
  done
fi
# gin-config is pure Python: where pip cannot install (no pip, a managed Python), its
# wheel goes on the path as it is.
if ! "$PY" -c "import gin" 2> /dev/null; then
  for whl in "$WHEELS_DIR"/gin_config-*.whl; do
    [ -e "$whl" ] || continue
    export PYTHONPATH="$(cd "$(dirname "$whl")" && pwd)/$(basename "$whl")${PYTHONPATH:+:$PYTHONPATH}"
    ACC_WHEELS_INSTALLED="${ACC_WHEELS_INSTALLED}gin_config(on PYTHONPATH) "
    break
  done
fi
export ACC_WHEELS_INSTALLED

for i in "${!CHECKS[@]}"; do
  name=${CHECKS[$i]%%:*}
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
    continue
  fi
  later=0
  for rest in "${CHECKS[@]:$((i + 1))}"; do
    later=$((later + ${rest##*:}))
  done
  left=$((BUDGET_S - ($(date +%s) - START)))
  limit=$((left - later))
  own=${CHECKS[$i]##*:}
  if [ "$limit" -lt $((own / 2)) ]; then limit=$((own / 2)); fi  # never starve a check
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  if [ "$limit" -lt 5 ]; then
    json_line "$name" false "skipped: total budget of $BUDGET_S s spent"
    continue
  fi
  tmp="$OUT_DIR/$name.jsonl"
  timeout -k 10 "$limit" "$PY" benchmarks/accelerator_check.py "$name" "${TINY_FLAG[@]}" \
    --budget_s $((limit - 5)) --results "$RESULTS" 2> "$OUT_DIR/$name.log" | tee "$tmp"
  rc=${PIPESTATUS[0]}
  cat "$tmp" >> "$RESULTS"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    json_line "$name" false "timeout after $limit s (lines above, if any, came before it)"
  elif [ "$rc" -ne 0 ] && ! grep -q '"ok": false' "$tmp"; then
    json_line "$name" false "exit $rc: $(tail -c 600 "$OUT_DIR/$name.log")"
  fi
done

"$PY" - "$RESULTS" "$(( $(date +%s) - START ))" "$SIZE" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
failed = sorted({r["check"] for r in lines if not r.get("ok")})
print(json.dumps({"check": "summary", "ok": not failed, "size": sys.argv[3],
                  "lines": len(lines), "failed": failed, "seconds": int(sys.argv[2])}))
sys.exit(1 if failed else 0)
EOF
