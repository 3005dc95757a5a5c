#!/usr/bin/env bash
# Installs the real OpenAI-compatible server the integration tests talk to (llama-cpp-python's server,
# which no one here wrote) into .venv, if it is not there yet. Building it compiles llama.cpp: ~6 min on
# 2 cores the first time, nothing afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null; then
  echo "setup-test-server: building llama-cpp-python[server] into .venv (several minutes)" >&2
  .venv/bin/pip install -q --disable-pip-version-check 'llama-cpp-python[server]==0.3.36'
fi
