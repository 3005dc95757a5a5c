"""Fixtures of the Python package's tests: a scripted server, problems, and the CLI binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scripted_server import ScriptedServer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
from scripted_server import TEST_KEY as SECRET  # noqa: E402


def problems(expressions: List[str]) -> List[dict]:
    return [{"id": f"p{i}", "problem": f"Compute {e}.", "answer": str(eval(e))} for i, e in enumerate(expressions)]


TRAIN = problems(["2 + 3", "4 * 5", "7 + 8", "3 * 9"])
TEST = [dict(p, id="t" + p["id"]) for p in problems(["6 * 6", "1 + 9"])]


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Each test in a directory of its own (runs/, .cache/ and functions/ land there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OAI_CONFIG_LIST", raising=False)
    return tmp_path


def write_jsonl(path: Path, rows: List[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cli() -> Path:
    """The CLI binary of this checkout (built when missing)."""
    binary = REPO / "target" / "debug" / "agentopt"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet", "--bin", "agentopt"], cwd=REPO, check=True)
    return binary


def run_cli(cli: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, AGENTOPT_PYTHON=sys.executable)
    env.pop("OAI_CONFIG_LIST", None)
    return subprocess.run([str(cli), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
