#!/usr/bin/env bash
# The GPU check, as one command for a lent device machine (its image has torch and transformers;
# anything else travels as wheels in .whl/, see the device tool's README):
#   run: bash benchmarks/gpu_check.sh        (results: $OUT/gpu_check.json, or ./gpu_check.json)
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 benchmarks/gpu_check.py --out "${OUT:-.}/gpu_check.json" "$@"
