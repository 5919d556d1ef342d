#!/usr/bin/env bash
# Reproduces the committed model: export the synthetic world's attempts from Rust, train,
# evaluate on held-out days, export ONNX + manifest. Needs the venv from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-7}"
PY="${PYTHON:-.venv/bin/python}"
cargo run --release -q -p courier-core --example export_training -- \
  --days 60 --routes 40 --seed "$SEED" --out models/data/train.csv
"$PY" models/train.py --data models/data/train.csv --seed "$SEED" --data-seed "$SEED"
