"""agentopt: train an LLM agent by learning its function list (AG2's AgentOptimizer, done right).

    import agentopt
    run = agentopt.train(train="train.jsonl", test="test.jsonl", config="OAI_CONFIG_LIST", epochs=4)
    run.summary, run.best_registry
    agentopt.evaluate(test="test.jsonl", functions=run.best_registry).rate

`from agentopt import AgentOptimizer` is a drop-in for AG2's class (see `agentopt.optimizer`).
"""

from __future__ import annotations

import os as _os
import sys as _sys

# Code runs in a sandboxed worker of this interpreter (it needs sympy and numpy, which this
# package's dependencies install), unless AGENTOPT_PYTHON says otherwise. Set before the native
# module starts any thread.
_os.environ.setdefault("AGENTOPT_PYTHON", _sys.executable)

from . import _agentopt  # noqa: E402
from ._api import evaluate, grade, resume, train  # noqa: E402
from ._errors import Error, FunctionError, InputError, Interrupted, RunError  # noqa: E402
from ._registry import Registry  # noqa: E402
from ._run import Epoch, Evaluation, Run  # noqa: E402
from .optimizer import AgentOptimizer  # noqa: E402

__version__ = _agentopt.__version__

__all__ = [
    "AgentOptimizer",
    "Epoch",
    "Error",
    "Evaluation",
    "FunctionError",
    "InputError",
    "Interrupted",
    "Registry",
    "Run",
    "RunError",
    "evaluate",
    "grade",
    "resume",
    "train",
]
