#!/usr/bin/env bash
# Installs the real OpenAI-compatible server the integration tests talk to (llama-cpp-python's server,
# which no one here wrote) into .venv, if it is not there yet. Building it compiles llama.cpp: ~5 min on
# 2 cores the first time, nothing afterwards.
#
# The build is portable (GGML_NATIVE=OFF): a -march=native build crashed with a general protection fault
# in libggml-cpu on its first request on machines with AMX/AVX-512, CI's among them. The multimodal
# library (mtmd) is not built: the server imports it only for image chat formats, which no test uses.
set -euo pipefail
cd "$(dirname "$0")/.."
build_args="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF"
stamp=.venv/.agentopt-test-server
if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$build_args" ]; then
  echo "setup-test-server: building llama-cpp-python[server] into .venv (several minutes)" >&2
  CMAKE_ARGS="$build_args" .venv/bin/pip install -q --disable-pip-version-check --no-cache-dir \
    --force-reinstall --no-deps 'llama-cpp-python==0.3.36'
  .venv/bin/pip install -q --disable-pip-version-check 'llama-cpp-python[server]==0.3.36'
  echo "$build_args" >"$stamp"
fi
