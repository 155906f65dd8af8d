#!/usr/bin/env bash
# Run synthpre_jax on GPUs: one host with N GPUs (one process sees them all), several hosts
# (one process per host, started on each host with its process id), or a SLURM job (one
# task per node; the process count, id and coordinator come from SLURM's variables).
# Every command is printed before it runs; --dry-run only prints.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  One host, N GPUs:
    launch/gpu.sh [--gpus N] -- COMMAND...
  Several hosts (run this on every host, same COMMAND, its own --process-id):
    launch/gpu.sh --coordinator HOST:PORT --num-processes N --process-id I [--gpus N] -- COMMAND...
  Inside a SLURM allocation (one task per node; ids and coordinator from SLURM_*):
    srun --ntasks-per-node=1 launch/gpu.sh -- COMMAND...
  Submit a SLURM job that does the above:
    launch/gpu.sh --slurm --nodes N [--gpus N] [--time HH:MM:SS] [--partition P] -- COMMAND...

COMMAND is e.g. python -m synthpre_jax.train --gin_file=... --gin.MODEL_DIR="'/shared/run'".
MODEL_DIR must be on storage every host can reach (NFS, GCS) in multi-host runs.

Options:
  --gpus N                 GPUs per host (CUDA_VISIBLE_DEVICES=0..N-1; default: all)
  --coordinator HOST:PORT  process 0's host and a free port (multi-host)
  --num-processes N        number of hosts/processes (multi-host)
  --process-id I           this host's id, 0..N-1 (multi-host)
  --timeout SECONDS        how long to wait for the coordinator and the others (default 300)
  --slurm                  submit with sbatch instead of running here (needs --nodes)
  --nodes N                nodes for --slurm
  --time T                 sbatch --time (default 24:00:00)
  --partition P            sbatch --partition
  --dry-run                print the commands without running them
  -h, --help               this help

SIGTERM (preemption, SLURM's time limit with --signal) makes the run save a checkpoint and
exit with code 143; the --slurm job is submitted with --signal=TERM@120 and --requeue and
re-queues itself after exit 143, so the same command resumes from the checkpoint.
EOF
}

GPUS="" COORD="" NUM="" PID="" TIMEOUT=300 SLURM=0 NODES="" TIME="24:00:00" PARTITION=""
DRY_RUN=0
COMMAND=()
die() { echo "gpu.sh: $*" >&2; echo "Run launch/gpu.sh --help for usage." >&2; exit 2; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --gpus) need_value "$@"; GPUS="$2"; shift 2 ;;
    --coordinator) need_value "$@"; COORD="$2"; shift 2 ;;
    --num-processes) need_value "$@"; NUM="$2"; shift 2 ;;
    --process-id) need_value "$@"; PID="$2"; shift 2 ;;
    --timeout) need_value "$@"; TIMEOUT="$2"; shift 2 ;;
    --slurm) SLURM=1; shift ;;
    --nodes) need_value "$@"; NODES="$2"; shift 2 ;;
    --time) need_value "$@"; TIME="$2"; shift 2 ;;
    --partition) need_value "$@"; PARTITION="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; COMMAND=("$@"); break ;;
    *) die "unknown option '$1' (put the command to run after --)" ;;
  esac
done

[[ ${#COMMAND[@]} -gt 0 ]] || die "no command: put it after --, e.g. -- python -m synthpre_jax.train ..."
[[ -z "$GPUS" ]] || is_int "$GPUS" || die "--gpus must be a number, got '$GPUS'"
is_int "$TIMEOUT" || die "--timeout must be a number of seconds, got '$TIMEOUT'"

show() {
  local out="+" w q="'\\''"
  for w in "$@"; do
    if [[ "$w" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $w"; else out+=" '${w//\'/$q}'"; fi
  done
  printf '%s\n' "$out"
}
run() {
  show "$@"
  [[ $DRY_RUN -eq 1 ]] || "$@"
}
# The last command replaces this shell, so SIGTERM reaches python directly.
run_exec() {
  show "$@"
  [[ $DRY_RUN -eq 1 ]] || exec "$@"
}

if [[ $SLURM -eq 1 ]]; then
  [[ -n "$NODES" ]] && is_int "$NODES" && [[ $NODES -ge 1 ]] || die "--slurm needs --nodes N (N >= 1)"
  script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  inner=("$script_dir/gpu.sh" --timeout "$TIMEOUT")
  [[ -n "$GPUS" ]] && inner+=(--gpus "$GPUS")
  inner+=(-- "${COMMAND[@]}")
  sbatch=(sbatch --job-name=synthpre_jax --nodes="$NODES" --ntasks-per-node=1
          --time="$TIME" --requeue --signal=TERM@120 --output=synthpre_jax-%j.out)
  [[ -n "$GPUS" ]] && sbatch+=(--gpus-per-node="$GPUS")
  [[ -n "$PARTITION" ]] && sbatch+=(--partition="$PARTITION")
  # The job step: one task per node, each running this script, which reads SLURM_*.
  # A run stopped by SIGTERM (exit 143: checkpoint saved) is re-queued to resume.
  wrap="srun --kill-on-bad-exit=1 $(printf '%q ' "${inner[@]}"); rc=\$?; \
if [ \$rc -eq 143 ]; then scontrol requeue \$SLURM_JOB_ID; fi; exit \$rc"
  run "${sbatch[@]}" --wrap="$wrap"
  exit 0
fi

export_vars=()
if [[ -n "$GPUS" ]]; then
  export_vars+=("CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((GPUS - 1)))")
fi
# Leave TensorFlow (input pipeline only) off the GPUs' memory; JAX preallocates the rest.
export_vars+=("TF_FORCE_GPU_ALLOW_GROWTH=true")

flags=()
if [[ -n "$COORD$NUM$PID" ]]; then
  [[ -n "$COORD" && -n "$NUM" && -n "$PID" ]] \
    || die "a multi-host run needs all of --coordinator HOST:PORT, --num-processes N and --process-id I"
  [[ "$COORD" == *:* ]] || die "--coordinator needs a port: HOST:PORT (process 0's host)"
  is_int "$NUM" && is_int "$PID" || die "--num-processes and --process-id must be numbers"
  [[ $PID -lt $NUM ]] || die "--process-id $PID must be < --num-processes $NUM"
  flags+=(--coordinator_address="$COORD" --num_processes="$NUM" --process_id="$PID")
  echo "gpu.sh: process $PID of $NUM, coordinator $COORD" >&2
elif [[ -n "${SLURM_NTASKS:-}" && "${SLURM_NTASKS}" -gt 1 ]]; then
  # synthpre_jax.distributed reads SLURM_NTASKS, SLURM_PROCID and the first host of
  # SLURM_STEP_NODELIST (coordinator port derived from SLURM_JOB_ID, as JAX does).
  echo "gpu.sh: SLURM task ${SLURM_PROCID:-?} of $SLURM_NTASKS" \
       "(nodes ${SLURM_STEP_NODELIST:-${SLURM_JOB_NODELIST:-?}})" >&2
else
  echo "gpu.sh: one process on this host's ${GPUS:-visible} GPUs" >&2
fi
flags+=(--initialization_timeout="$TIMEOUT")

# The flags go right after the python module's own arguments; they only apply to
# synthpre_jax.train (other commands get the JAX_* environment variables instead).
if [[ " ${COMMAND[*]} " == *" synthpre_jax.train "* ]]; then
  run_exec env "${export_vars[@]}" "${COMMAND[@]}" "${flags[@]}"
else
  env_flags=()
  [[ -n "$COORD" ]] && env_flags+=("JAX_COORDINATOR_ADDRESS=$COORD" "JAX_NUM_PROCESSES=$NUM" "JAX_PROCESS_ID=$PID")
  run_exec env "${export_vars[@]}" "${env_flags[@]}" "${COMMAND[@]}"
fi
