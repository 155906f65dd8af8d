#!/usr/bin/env bash
# Run synthpre_jax on a Cloud TPU VM or pod slice: create it, install the project on every
# worker, run the same command on all workers at once (one JAX process per worker; they
# find each other with jax.distributed.initialize()'s Cloud TPU auto-detection), stream
# the logs, delete the VM. Every gcloud command is printed before it runs; --dry-run only
# prints them. With --spot, a preempted run is resumed: the VM is re-created and the same
# command re-run, which continues from the last checkpoint in MODEL_DIR (use a gs:// path).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/tpu_vm.sh --name NAME --zone ZONE [options] -- COMMAND...
       launch/tpu_vm.sh --name NAME --zone ZONE [options] --commands-file FILE

Runs COMMAND (e.g. python -m synthpre_jax.train --gin_file=... --gin.MODEL_DIR="'gs://b/run'")
on every worker of a new Cloud TPU VM / pod slice, then deletes the VM.

Options:
  --name NAME             TPU VM name (required)
  --zone ZONE             e.g. us-central2-b (required)
  --project PROJECT       gcloud project (default: gcloud's configured one)
  --accelerator-type T    e.g. v4-8 (one host), v4-32 (a 4-worker pod slice); default v4-8
  --version V             TPU software version (default tpu-ubuntu2204-base)
  --spot                  create a Spot VM; when it is preempted, re-create it and re-run
                          the same command, which resumes from its checkpoint
  --max-restarts N        give up after N re-creations (default 20)
  --commands-file FILE    run each non-empty, non-# line of FILE in turn on all workers
                          (e.g. commands exported by a study runner) instead of COMMAND
  --src DIR               project tree to copy to the workers (default: this repository)
  --jax-spec SPEC         pip requirement for JAX on TPU (default 'jax[tpu]>=0.10,<0.12')
  --existing              use an existing VM: do not create it (nor re-create it)
  --keep                  do not delete the VM at the end
  --dry-run               print the gcloud commands without running them
  -h, --help              this help

Each process writes checkpoints collectively with the others; metrics, config.gin and
INFO logs come from process 0. Exit code: the command's (0 when it finished), or 1.
EOF
}

NAME="" ZONE="" PROJECT="" ACCEL="v4-8" VERSION="tpu-ubuntu2204-base" SPOT=0
MAX_RESTARTS=20 COMMANDS_FILE="" SRC="" JAX_SPEC='jax[tpu]>=0.10,<0.12' EXISTING=0 KEEP=0
DRY_RUN=0
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMAND=()

die() { echo "tpu_vm.sh: $*" >&2; echo "Run launch/tpu_vm.sh --help for usage." >&2; exit 2; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --accelerator-type) need_value "$@"; ACCEL="$2"; shift 2 ;;
    --version) need_value "$@"; VERSION="$2"; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --max-restarts) need_value "$@"; MAX_RESTARTS="$2"; shift 2 ;;
    --commands-file) need_value "$@"; COMMANDS_FILE="$2"; shift 2 ;;
    --src) need_value "$@"; SRC="$2"; shift 2 ;;
    --jax-spec) need_value "$@"; JAX_SPEC="$2"; shift 2 ;;
    --existing) EXISTING=1; shift ;;
    --keep) KEEP=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; COMMAND=("$@"); break ;;
    *) die "unknown option '$1' (put the command to run after --)" ;;
  esac
done

[[ -n "$NAME" ]] || die "--name is required"
[[ -n "$ZONE" ]] || die "--zone is required"
[[ "$MAX_RESTARTS" =~ ^[0-9]+$ ]] || die "--max-restarts must be a number, got '$MAX_RESTARTS'"
if [[ -n "$COMMANDS_FILE" ]]; then
  [[ ${#COMMAND[@]} -eq 0 ]] || die "give either --commands-file or a command after --, not both"
  [[ -f "$COMMANDS_FILE" ]] || die "--commands-file '$COMMANDS_FILE' does not exist"
else
  [[ ${#COMMAND[@]} -gt 0 ]] || die "no command: put it after --, e.g. -- python -m synthpre_jax.train ..."
fi
[[ -d "$SRC" ]] || die "--src '$SRC' is not a directory"

# The remote commands, one per line, each quoted so that Gin strings ("'gs://...'") survive.
REMOTE_COMMANDS=()
if [[ -n "$COMMANDS_FILE" ]]; then
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ -z "${line// }" || "$line" =~ ^[[:space:]]*# ]] && continue
    REMOTE_COMMANDS+=("$line")
  done < "$COMMANDS_FILE"
  [[ ${#REMOTE_COMMANDS[@]} -gt 0 ]] || die "--commands-file '$COMMANDS_FILE' holds no command"
else
  REMOTE_COMMANDS+=("$(printf '%q ' "${COMMAND[@]}")")
fi
for c in "${REMOTE_COMMANDS[@]}"; do
  if [[ "$c" == *MODEL_DIR* && "$c" != *gs://* ]]; then
    echo "tpu_vm.sh: warning: MODEL_DIR is not a gs:// path; a re-created VM cannot resume" \
         "from a checkpoint on the deleted VM's disk." >&2
  fi
done

GCLOUD=(gcloud compute tpus tpu-vm)
COMMON=(--zone="$ZONE")
[[ -n "$PROJECT" ]] && COMMON+=(--project="$PROJECT")
REMOTE_DIR='~/synthpre_jax'
TARBALL="${TMPDIR:-/tmp}/synthpre_jax_${NAME}.tar.gz"

# Prints a command (each word single-quoted when it needs quoting, so it can be pasted
# into a shell), then runs it unless --dry-run.
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

create_vm() {
  local extra=()
  [[ $SPOT -eq 1 ]] && extra+=(--spot)
  run "${GCLOUD[@]}" create "$NAME" "${COMMON[@]}" --accelerator-type="$ACCEL" \
      --version="$VERSION" "${extra[@]}"
}

install_project() {
  run tar -czf "$TARBALL" -C "$SRC" --exclude=.git --exclude='*.pyc' --exclude=__pycache__ .
  run "${GCLOUD[@]}" scp "$TARBALL" "$NAME:synthpre_jax.tar.gz" "${COMMON[@]}" --worker=all
  run "${GCLOUD[@]}" ssh "$NAME" "${COMMON[@]}" --worker=all --command="set -e; \
rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar -xzf ~/synthpre_jax.tar.gz -C $REMOTE_DIR && \
cd $REMOTE_DIR && python3 -m pip install -q -U pip && python3 -m pip install -q '$JAX_SPEC' \
-f https://storage.googleapis.com/jax-releases/libtpu_releases.html && python3 -m pip install -q -e ."
}

# Runs one command on all workers at once; gcloud streams every worker's output.
# SYNTHPRE_DISTRIBUTED=auto: the processes find each other via the TPU metadata.
run_on_all_workers() {
  run "${GCLOUD[@]}" ssh "$NAME" "${COMMON[@]}" --worker=all \
      --command="cd $REMOTE_DIR && export SYNTHPRE_DISTRIBUTED=auto && $1"
}

vm_state() {
  "${GCLOUD[@]}" describe "$NAME" "${COMMON[@]}" --format='value(state)' 2>/dev/null || echo GONE
}

delete_vm() {
  run "${GCLOUD[@]}" delete "$NAME" "${COMMON[@]}" --quiet
}

cleanup() {
  local rc=$?
  if [[ $KEEP -eq 0 && $EXISTING -eq 0 ]]; then
    delete_vm || echo "tpu_vm.sh: could not delete $NAME; delete it by hand." >&2
  fi
  rm -f "$TARBALL"
  exit $rc
}

if [[ $EXISTING -eq 0 ]]; then
  trap cleanup EXIT
  create_vm
fi
install_project
if [[ $DRY_RUN -eq 1 && $SPOT -eq 1 ]]; then
  echo "# --spot: if the VM is preempted (or the run exits 143 after SIGTERM), the script" \
       "deletes it, runs the create and install commands above again, and re-runs the" \
       "unfinished command, which resumes from its last checkpoint."
fi

restarts=0
next=0  # index of the next command to run; finished commands are not re-run
while [[ $next -lt ${#REMOTE_COMMANDS[@]} ]]; do
  set +e
  run_on_all_workers "${REMOTE_COMMANDS[$next]}"
  rc=$?
  set -e
  if [[ $rc -eq 0 ]]; then
    next=$((next + 1))
    continue
  fi
  # 143: a run stopped by SIGTERM after saving its checkpoint (synthpre_jax.train).
  state=$([[ $DRY_RUN -eq 1 ]] && echo READY || vm_state)
  if [[ $SPOT -eq 1 && $EXISTING -eq 0 && ( $rc -eq 143 || "$state" != READY ) ]]; then
    restarts=$((restarts + 1))
    if [[ $restarts -gt $MAX_RESTARTS ]]; then
      echo "tpu_vm.sh: preempted $restarts times; giving up (--max-restarts $MAX_RESTARTS)." >&2
      exit 1
    fi
    echo "tpu_vm.sh: the VM was preempted or the run stopped (exit $rc, state $state);" \
         "re-creating it and re-running the same command (restart $restarts)." >&2
    delete_vm || true
    create_vm
    install_project
    continue
  fi
  echo "tpu_vm.sh: the command failed with exit code $rc on at least one worker." >&2
  exit "$rc"
done
echo "tpu_vm.sh: done." >&2
