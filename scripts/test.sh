#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then runs lint and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Python package in the debug profile, so it reuses the test suite's build.
AGENTOPT_PY_PROFILE=dev ./scripts/setup.sh
./scripts/setup-test-server.sh
.venv/bin/python -c "import pytest, nbclient, openai, autogen.agentchat.contrib.agent_optimizer" 2>/dev/null ||
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy -p agentopt-python --quiet -- -D warnings
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast || status=$?
else
  cargo test --no-fail-fast || status=$?
fi
# The Python package's tests (pytest), run whatever the Rust suite did, so one run reports both.
.venv/bin/python -m pytest -q python/tests || status=$?
exit $status
