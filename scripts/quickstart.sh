#!/usr/bin/env bash
# The main job (README): set everything up, build, and train on the shipped sample with the embedded
# offline model, ending with the before/after summary and where the run was written.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release
exec ./target/release/agentopt train "$@"
