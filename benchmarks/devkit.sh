#!/usr/bin/env bash
# Packs the Python packages that a GPU machine's image lacks (Ray Tune, Optuna, W&B and what they need)
# into .devkit/site.tar.xz, for a machine that cannot reach a package registry. Run it here, where pip
# can download; carry .devkit to the GPU machine and unpack it there:
#
#   bash benchmarks/devkit.sh                      # here: builds .devkit/ (Python 3.12 wheels)
#   mkdir -p /tmp/site && tar -xJf .devkit/site.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD
#
# It also copies ../shared/bench (the reference scripts) and the Phoenix corpus.csv into .devkit/shared:
# ../shared does not travel to the GPU machine. benchmarks/gpu_check.sh does the unpacking there.
#
# Why a tarball and not wheels: Ray's wheel alone is 79 MB and a device call carries at most 64 MiB.
# Unpacked, without the parts a sweep never imports (Java jars, RLlib, Serve, LLM), and xz-compressed,
# everything fits in about 45 MB. Packages the image already has with a compiled core (torch, numpy,
# pandas, pyarrow, ...) are left out: the image's own builds match its CUDA and Python.
# Environment: DEVKIT_PY (default 3.12, the image's Python), DEVKIT_OUT (default .devkit).
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root: .devkit/ and ../shared are relative to it
for need in ../shared/bench/reference_trainer.py ../shared/data/phoenix14t/corpus.csv; do
  [ -f "$need" ] || { echo "devkit: $need not found (../shared must sit beside the repository)" >&2; exit 2; }
done
py=${DEVKIT_PY:-3.12}
out=${DEVKIT_OUT:-.devkit}
tag=cp${py/./}
rm -rf "$out/wheels" "$out/site" "$out/shared"
mkdir -p "$out/wheels" "$out/site"

# Everything ray[tune], optuna and wandb need, resolved for the target Python and platform.
python3 -m pip download -q --only-binary=:all: --python-version "$py" --implementation cp --abi "$tag" \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$out/wheels" \
  "ray[tune]==2.60.0" "optuna==5.0.0" "wandb==0.31.0"

# The image's own (compiled against its CUDA / Python, or large): never shadowed by the kit.
keep_image='^(torch|triton|nvidia_|numpy|pandas|pyarrow|scipy|matplotlib|pillow|contourpy|kiwisolver|fonttools)'
for w in "$out"/wheels/*.whl; do
  name=$(basename "$w")
  if [[ $name =~ $keep_image ]]; then continue; fi
  unzip -q -o "$w" -d "$out/site"  # unzip keeps the executable bits (raylet, wandb-core)
done
# Parts of Ray a Tune sweep never imports.
rm -rf "$out"/site/ray/{jars,rllib,serve,llm} "$out"/site/*.dist-info/RECORD
find "$out/site" -name __pycache__ -prune -exec rm -rf {} +
chmod -R u+rwX,go+rX "$out/site"
tar -C "$out/site" -cf - . | xz -T0 -6 > "$out/site.tar.xz"
rm -rf "$out/wheels" "$out/site"
mkdir -p "$out/shared/data/phoenix14t"
cp -r ../shared/bench "$out/shared/"
cp ../shared/data/phoenix14t/corpus.csv "$out/shared/data/phoenix14t/"
chmod -R u+w "$out/shared"  # ../shared is read-only: a rebuild must be able to replace the copies
echo "$out/site.tar.xz: $(du -h "$out/site.tar.xz" | cut -f1) (carry it: run(carry=[\"$out\"]))"
