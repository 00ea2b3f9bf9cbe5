#!/usr/bin/env bash
# The GPU check of issue 24, sized to one device call (about 6 minutes; each stage has its own time limit and
# the stages left when 6 minutes have passed are skipped, named in the table). Prints one table at the end
# (benchmarks/gpu_table.py): the reference trainer (tuned, tuned + compile, at --n 1500: its pool is built on
# the CPU) beside our plain, cached x4 and compiled steps and their ratios, host syncs inside our steps
# (set_sync_debug_mode), retrieval metrics at N = 100,000 beside reference_metrics.py, 1 vs 4 trials packed on
# the GPU, the short phase1-shaped sweep's busy share and trials per hour, and the CUDA tests.
#
#   bash benchmarks/devkit.sh                 # here, once: Ray Tune, Optuna, W&B for the GPU image (.devkit/)
#   run(command="bash benchmarks/gpu_check.sh", carry=[".devkit"], timeout_s=480)     # the device call
#   bash benchmarks/gpu_check.sh --dry-run    # here, on the CPU: every stage at smoke size, the same table
#
# Logs go to $OUT (the device tool brings them back) or /tmp/gpu_check.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
[ $# -gt 0 ] && [ $dry = 0 ] && { echo "usage: bash benchmarks/gpu_check.sh [--dry-run]" >&2; exit 2; }
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
py=${PYTHON:-python3}
budget=${GPU_CHECK_BUDGET_S:-360}
ref=../shared/bench
export PYTHONUNBUFFERED=1

setup() {  # the kit of packages the GPU image lacks, and ../shared (it does not travel)
  if [ -f .devkit/site.tar.xz ]; then
    mkdir -p /tmp/site && { [ -f /tmp/site/.unpacked ] || { tar -xJf .devkit/site.tar.xz -C /tmp/site && touch /tmp/site/.unpacked; }; }
    export PYTHONPATH=/tmp/site:$PWD
  else
    export PYTHONPATH=$PWD
  fi
  [ -e ../shared ] || { [ -d .devkit/shared ] && ln -sfn "$PWD/.devkit/shared" ../shared; }
  [ $dry = 1 ] || nvidia-smi -L
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
}

stage() {  # stage NAME LIMIT_S CMD...: its output in $out/NAME.log, its exit code and seconds in $out/stages.tsv
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  if [ $((SECONDS - start)) -ge "$budget" ]; then
    printf '%s\tskipped\t0\n' "$name" >> "$out/stages.tsv"
    return
  fi
  echo "== $name: $*"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$out/stages.tsv"
  tail -n 4 "$out/$name.log"
}

setup
start=$SECONDS
: > "$out/stages.tsv"
if [ $dry = 1 ]; then  # the same stages on the CPU at smoke size (the reference scripts need CUDA: skipped)
  dev=(--device cpu --smoke)
  stage ours 120 $py benchmarks/bench_trainer.py "${dev[@]}" --modes plain,cached4
  stage ours_compile 60 $py benchmarks/bench_trainer.py "${dev[@]}" --compile --modes plain
  stage syncs 60 $py benchmarks/bench_trainer.py "${dev[@]}" --count --modes plain,cached4
  stage metrics 60 $py benchmarks/bench_metrics.py --device cpu --smoke --dup 0.2
  stage packed 120 $py benchmarks/bench_trainer.py "${dev[@]}" --parallel 2
  stage phase1 300 $py benchmarks/bench_phase1.py --smoke
else
  stage ref_tuned 90 $py $ref/reference_trainer.py --mode tuned --n 1500 --steps 20
  stage ref_compile 150 $py $ref/reference_trainer.py --mode tuned --compile --n 1500 --steps 20
  stage ours 100 $py benchmarks/bench_trainer.py --device cuda --modes plain,cached4 --steps 15
  stage syncs 60 $py benchmarks/bench_trainer.py --device cuda --modes plain,cached4 --steps 3 --sync-debug
  stage ours_compile 150 $py benchmarks/bench_trainer.py --device cuda --compile --modes plain,cached4 --steps 15
  stage ref_metrics 60 $py $ref/reference_metrics.py 100000
  stage metrics 60 $py benchmarks/bench_metrics.py --device cuda --n 100000 --dim 512
  stage packed 120 bash -c "$py benchmarks/bench_trainer.py --device cuda --batch 256 --steps 15 --parallel 1 && \
    $py benchmarks/bench_trainer.py --device cuda --batch 256 --steps 15 --parallel 4"
  stage phase1 200 $py $ref/phase1_short.py
  stage tests 150 $py -m pytest -q -p no:cacheprovider tests/train/test_model.py tests/train/test_metrics.py \
    tests/train/test_fast_paths.py tests/train/test_steps.py -k "cuda or varlen or fast_path or reads_nothing"
fi
$py benchmarks/gpu_table.py "$out" | tee "$out/table.txt"
