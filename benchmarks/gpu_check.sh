#!/usr/bin/env bash
# nndl's device check (issue 21) in one call on a GPU machine, from the repository root:
#
#     bash benchmarks/gpu_check.sh [gpu_check.py options, e.g. --quick]
#
# Installs only what is missing (nndl, CuPy for CUDA 12, PyTorch), finds MNIST, trains one model with
# `nndl train --device gpu` and evaluates it on the CPU, then runs benchmarks/gpu_check.py with what is left of
# GPU_CHECK_SECONDS (default 400) as its --budget. Every step says what it did; none stops the ones after it.
set -u
cd "$(dirname "$0")/.."
TOTAL=${GPU_CHECK_SECONDS:-400}
VENV=${GPU_CHECK_VENV:-/tmp/nndl-gpu-venv}  # outside the checkout; sees the machine's own CuPy and PyTorch

[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    PY="$VENV/bin/python"
else
    PY=${PYTHON:-python3}; export PIP_USER=1 PIP_BREAK_SYSTEM_PACKAGES=1  # no venv: the user's site-packages
fi
works() { "$PY" -c "$1" >/dev/null 2>&1; }

"$PY" -m pip install -q -e '.[cli]' || echo "gpu_check.sh: installing nndl failed"
CUPY_SMOKE="import cupy; assert float((cupy.ones((64, 64)) @ cupy.ones((64, 64))).sum()) == 64**3"
works "$CUPY_SMOKE" || timeout 120 "$PY" -m pip install -q cupy-cuda12x
# CUDA's own libraries from the registry, when the machine lacks them
works "$CUPY_SMOKE" || timeout 180 "$PY" -m pip install -q 'cupy-cuda12x[ctk]'
works "$CUPY_SMOKE" || echo "gpu_check.sh: CuPy cannot use the GPU here: $("$PY" -c "$CUPY_SMOKE" 2>&1 | tail -1)"
works "import torch" || timeout 180 "$PY" -m pip install -q torch || echo "gpu_check.sh: no PyTorch"
echo "gpu_check.sh: installs took ${SECONDS} s"

for folder in "${NNDL_DATA:-}" ../shared/datasets/mnist shared/datasets/mnist; do
    if [ -n "$folder" ] && [ -d "$folder" ]; then export NNDL_DATA=$(cd "$folder" && pwd); break; fi
done
[ -n "${NNDL_DATA:-}" ] || { echo "gpu_check.sh: no MNIST: set NNDL_DATA to its folder"; exit 2; }

echo "== nndl train --device gpu, then nndl evaluate on the CPU =="
rm -f /tmp/g.npz
timeout 120 "$PY" -m nndl train --device gpu --sizes 784,100,10 --epochs 1 --mini-batch-size 100 --eta 0.1 \
    --seed 1 --save /tmp/g.npz && timeout 60 "$PY" -m nndl evaluate /tmp/g.npz
echo "(exit status $?)"

budget=$((TOTAL - SECONDS - 20 > 30 ? TOTAL - SECONDS - 20 : 30))
echo "== benchmarks/gpu_check.py --budget $budget =="
timeout -k 10 $((budget + 45)) "$PY" benchmarks/gpu_check.py --budget "$budget" "$@"
