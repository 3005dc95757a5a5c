#!/usr/bin/env bash
# The main job (README): set everything up, build, and train on the shipped sample with the embedded
# offline model, ending with the before/after summary and where the run was written. Without arguments
# the training is kept small (the tiny CPU model needs 5-30 s per conversation on 2 cores); any arguments
# replace those defaults and go to `agentopt train` as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release
if [ $# -eq 0 ]; then
  set -- --train-size 3 --test-size 2 --epochs 2 --patience 1 --concurrency 1
fi
exec ./target/release/agentopt train "$@"
