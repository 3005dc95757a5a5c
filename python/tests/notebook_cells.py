"""The AgentOptimizer notebook's own cells (../shared/seeds/003_…, AG2's `agentchat_agentoptimizer`),
read from the copy beside the repository at test time, so the tests run what its users run."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

REPO = Path(__file__).resolve().parents[2]
SEED = "003_77b7e729749de750.txt"
AG2_IMPORT = "from autogen.agentchat.contrib.agent_optimizer import AgentOptimizer"
AGENTOPT_IMPORT = "from agentopt import AgentOptimizer"


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def notebook_cells() -> Optional[Dict[str, str]]:
    """`imports`, `agent` (the MathUserProxyAgent subclass) and `training` (the training loop), or
    None when the notebook is not beside the repository."""
    for folder in (REPO.parent / "shared" / "seeds", Path("/work/shared/seeds")):
        path = folder / SEED
        if path.exists():
            text = path.read_text(encoding="utf-8")
            return {
                "imports": _between(text, "import copy", "MathUserProxy with function_call#"),
                "agent": _between(text, "def is_termination_msg_mathchat", "Load dataset#"),
                "training": _between(text, "EPOCH = 10", "Test with agent optimizations#"),
            }
    return None
