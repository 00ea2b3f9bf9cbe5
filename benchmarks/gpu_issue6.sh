#!/usr/bin/env bash
# Issue 6's GPU measurements, in stages that each fit one device call (at most 10 minutes). Build the
# kit here first (`bash benchmarks/devkit.sh`), then on the GPU machine, from the repository root:
#
#   bash benchmarks/gpu_issue6.sh trainer   # ~8 min: reference trainer (naive, tuned, tuned+compile) beside
#                                           #   ours (buckets off/on, cached x2/x4, compile), a profile
#   bash benchmarks/gpu_issue6.sh share     # ~6 min: 1/2/4 trials sharing the GPU, metrics at N=100k
#                                           #   beside the reference, the CUDA tests
#   bash benchmarks/gpu_issue6.sh phase1    # starts the 32-trial phase1 sweep in the background, waits
#   bash benchmarks/gpu_issue6.sh wait      # waits for it again (a later call while the machine is warm)
#
# Logs go to $OUT (the device tool brings them back) or /tmp/issue6.
set -uo pipefail
stage=${1:?stage: trainer | share | phase1 | wait}
case $stage in trainer|share|phase1|wait) ;; *) echo "unknown stage: $stage" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/issue6}
mkdir -p "$out"
py=${PYTHON:-python3}  # the GPU image: python3 holds PyTorch

setup() {
  if [ ! -f .devkit/site.tar.xz ] || [ ! -f .devkit/shared/bench/reference_trainer.py ]; then
    echo "no complete .devkit/: build it with benchmarks/devkit.sh and carry it (run(carry=['.devkit']))" >&2
    exit 2
  fi
  if [ ! -f /tmp/site/.unpacked ]; then
    mkdir -p /tmp/site && tar -xJf .devkit/site.tar.xz -C /tmp/site && touch /tmp/site/.unpacked || exit 1
  fi
  export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
  [ -e ../shared ] || ln -sfn "$PWD/.devkit/shared" ../shared  # the scripts look for ../shared
  nvidia-smi -L
  $py -c 'import torch, ray, optuna; print("torch", torch.__version__, "ray", ray.__version__, "optuna", optuna.__version__)'
}

step() {  # step NAME CMD...: run, log to $out/NAME.log, never stop the stage on one failure
  local name=$1; shift
  echo "== $name: $*" | tee -a "$out/$name.log"
  "$@" 2>&1 | tee -a "$out/$name.log"
}

wait_phase1() {
  [ -f /tmp/phase1.pid ] || { echo "no phase1 sweep was started on this machine"; return; }
  local deadline=$((SECONDS + ${1:-570}))
  while [ -f /tmp/phase1.pid ] && kill -0 "$(cat /tmp/phase1.pid)" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 10
  done
  cp /tmp/phase1.log "$out/phase1.log"
  if kill -0 "$(cat /tmp/phase1.pid)" 2>/dev/null; then
    echo "phase1 still running; next call: bash benchmarks/gpu_issue6.sh wait"; tail -c 400 /tmp/phase1.log
  else
    tail -n 12 /tmp/phase1.log
    cp "$(ls -td /tmp/vlp-bench-phase1-*/runs/phase1 2>/dev/null | head -1)/leaderboard.parquet" "$out/" 2>/dev/null
  fi
}

setup
ref=../shared/bench
case $stage in
  trainer)
    for mode in naive tuned; do step trainer $py $ref/reference_trainer.py --mode $mode; done
    step trainer $py $ref/reference_trainer.py --mode tuned --compile
    step trainer $py benchmarks/bench_trainer.py --device cuda --buckets 0
    step trainer $py benchmarks/bench_trainer.py --device cuda
    step trainer $py benchmarks/bench_trainer.py --device cuda --compile --modes plain,cached4
    step trainer $py benchmarks/bench_trainer.py --device cuda --profile --steps 5
    ;;
  share)
    for n in 1 2 4; do step share $py benchmarks/bench_trainer.py --device cuda --batch 256 --parallel $n; done
    step share $py $ref/reference_metrics.py 10000 50000 100000
    step share $py benchmarks/bench_metrics.py --device cuda --n 10000 --n 50000 --n 100000
    step share $py -m pytest -q -p no:cacheprovider tests/train -k "cuda or compiled"
    ;;
  phase1)
    if [ -f /tmp/phase1.pid ] && kill -0 "$(cat /tmp/phase1.pid)" 2>/dev/null; then
      echo "a phase1 sweep is already running: use the wait stage" >&2
      exit 2
    fi
    # The sweep outlives this call if need be (setsid): it builds its data first (about 10 s).
    setsid nohup $py benchmarks/bench_phase1.py > /tmp/phase1.log 2>&1 &
    echo $! > /tmp/phase1.pid
    wait_phase1 570
    ;;
  wait)
    wait_phase1 570
    ;;
esac
