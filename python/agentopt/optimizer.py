"""`AgentOptimizer`: a drop-in for AG2's `autogen.agentchat.contrib.agent_optimizer.AgentOptimizer`
(same constructor, `record_one_conversation`, `step`, `reset_optimizer`, same return shapes), run by
agentopt's optimizer instead of AG2's:

- a trial is kept only when its score *strictly* beats the best (AG2 keeps ties); otherwise it is
  rolled back, and `step()` tells the agents to remove the rolled-back functions in a form AG2's
  `update_function_signature(func_sig=NAME, is_remove=True)` actually removes (AG2 passes a dict,
  which removes nothing, so rolled-back functions stay advertised);
- every proposed function is checked in the sandbox (defines the function, packages import, schema
  fits) and the error is fed back to the optimizer model to fix; the step ends on TERMINATE;
- the optimizer is shown the best registry's real conversations and per-problem results;
- each executor in `register_for_executor` runs **its own** function's code in agentopt's sandbox
  (AG2's closures all run the last function of the list, under every name).
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _agentopt
from ._errors import FunctionError, InputError
from ._inputs import ag2_config_list, hidden_paths
from ._registry import Registry

EMPTY_HISTORY_WARNING = (
    "AgentOptimizer: conversation {index} was recorded empty, so the optimizer sees no conversation, "
    "only the satisfied/not-satisfied score. (AG2's notebook reads `assistant.chat_messages_for_summary("
    "user_proxy)` after `initiate_chat`, but its MathUserProxyAgent has already called `recipient.reset()`, "
    "which clears that history. Read the history before the reset to let the optimizer see what happened.) "
    "Shown once."
)


def _executor(registry: Registry, name: str, exec_timeout: float) -> Callable[..., str]:
    """A function AG2's executor can call: runs `name`'s own code in a fresh sandbox session and
    returns what the assistant is shown (its output and return value); raises on failure, which
    AG2's `execute_function` reports to the assistant as an error."""

    def call(**arguments: Any) -> str:
        status, _stdout, _stderr, _result, text = registry._call(name, arguments, exec_timeout)
        if status != "ok":
            raise FunctionError(text)
        return text

    call.__name__ = name
    call.__doc__ = registry[name].get("description")
    return call


class AgentOptimizer:
    """See the module documentation. `llm_config`: AG2's dict with `config_list` (and optionally
    `cache_seed`: None turns the cache off, default 41) or an `autogen.LLMConfig`; the entries whose
    `model` is `optimizer_model` are used, in order."""

    def __init__(
        self,
        max_actions_per_step: int,
        llm_config: Any = None,
        optimizer_model: Optional[str] = "gpt-4-1106-preview",
        *,
        exec_timeout: float = 10.0,
        seed: Optional[int] = 0,
    ) -> None:
        if llm_config is None:
            raise InputError("llm_config is required for AgentOptimizer")
        if int(max_actions_per_step) < 1:
            raise InputError("max_actions_per_step must be at least 1")
        self.max_actions_per_step = int(max_actions_per_step)
        self.optimizer_model = optimizer_model
        entries = ag2_config_list(llm_config)
        if optimizer_model is not None and not any(e.get("model") == optimizer_model for e in entries):
            models = ", ".join(sorted({str(e.get("model")) for e in entries})) or "none"
            raise InputError(
                f"llm_config: no config_list entry has model `{optimizer_model}` (optimizer_model); "
                f"its models: {models}"
            )
        self._config = json.dumps(entries)
        # As AG2: the reply cache is on only when llm_config names a cache_seed.
        if isinstance(llm_config, dict):
            self._cache_seed = llm_config.get("cache_seed")
        else:
            self._cache_seed = llm_config.model_dump().get("cache_seed") if hasattr(llm_config, "model_dump") else None
        self._exec_timeout = float(exec_timeout)
        self._seed = seed
        self._warned_empty = False
        self.reset_optimizer()

    def reset_optimizer(self) -> None:
        """Forgets everything: no best, no trial, no functions, and what the agents were told so far
        (as AG2's does: the next `step()` asks no agent to remove anything)."""
        self._trial: List[Tuple[List[Dict[str, Any]], bool]] = []
        self._trial_functions = Registry()
        self._best: Optional[Dict[str, Any]] = None
        self._rejected: List[Dict[str, Any]] = []
        self._advertised: List[str] = []
        self._epoch = -1
        self.history: List[Dict[str, Any]] = []
        self.usage: Dict[str, Any] = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0}

    def record_one_conversation(self, conversation_history: List[Dict[str, Any]], is_satisfied: Optional[bool] = None) -> None:
        """Records one conversation of the current functions and whether it satisfied the user (None:
        asks on stdin, as AG2 does)."""
        if is_satisfied is None:
            while True:
                try:
                    reply = input("Was the user satisfied with the solution? 1 = satisfied, 0 = not satisfied: ")
                except EOFError:
                    raise InputError("is_satisfied was not given and there is no input to ask on") from None
                if reply.strip() in ("0", "1"):
                    is_satisfied = reply.strip() == "1"
                    break
        history = [dict(m) for m in (conversation_history or [])]
        if not history and not self._warned_empty:
            self._warned_empty = True
            warnings.warn(EMPTY_HISTORY_WARNING.format(index=len(self._trial)), UserWarning, stacklevel=2)
        self._trial.append((history, bool(is_satisfied)))

    @property
    def best_registry(self) -> Registry:
        """The best function list so far (empty before the first step)."""
        return Registry(self._best["registry"]["functions"]) if self._best else Registry()

    def step(self) -> Tuple[List[Dict[str, Any]], Dict[str, Optional[Callable[..., str]]]]:
        """Scores the conversations recorded since the last step (the trial), keeps the trial's
        functions only when the score strictly beats the best, asks the optimizer for at most
        `max_actions_per_step` actions on the best, and returns AG2's
        `(register_for_llm, register_for_executor)` for the new function list."""
        if not self._trial:
            raise InputError("step(): no conversation was recorded since the last step, so there is nothing to score")
        self._epoch += 1
        score = sum(ok for _, ok in self._trial) / len(self._trial)
        trial = {"epoch": self._epoch, "score": score, "registry": json.loads(self._trial_functions.to_json())}
        accepted = self._best is None or score > self._best["score"]
        if accepted:
            self._best = dict(trial, histories=self._trial)
            self._rejected = []
        else:
            self._rejected.append(trial)
        self._trial = []
        request = {
            "optimizer_model": self.optimizer_model,
            "actions_per_step": self.max_actions_per_step,
            "best": self._best["registry"],
            "best_score": self._best["score"],
            "best_epoch": self._best["epoch"],
            "rejected": self._rejected,
            "histories": self._best["histories"],
            "exec_timeout": self._exec_timeout,
            "cache_seed": self._cache_seed,
            "cache_dir": ".cache/agentopt",
            "hidden": hidden_paths(),
            "seed": self._seed,
        }
        # default=str: AG2 messages may carry objects JSON has no form for.
        outcome = json.loads(_agentopt.optimizer_step(json.dumps(request, default=str), self._config))
        for key in ("calls", "input_tokens", "output_tokens", "usd"):
            self.usage[key] = self.usage.get(key, 0) + outcome["usage"].get(key, 0)
        new = Registry(outcome["registry"]["functions"])
        self.history.append({
            "epoch": self._epoch,
            "score": score,
            "decision": "accept" if accepted else "rollback",
            "functions": new.names,
            "events": outcome["events"],
        })
        register_for_llm: List[Dict[str, Any]] = []
        register_for_executor: Dict[str, Optional[Callable[..., str]]] = {}
        for name in self._advertised:
            if name not in new:
                # A name, not AG2's `{"name": ...}`: AG2's update_function_signature compares names
                # with it, so only a name removes the function.
                register_for_llm.append({"func_sig": name, "is_remove": True})
                register_for_executor[name] = None
        for function in new.functions:
            register_for_llm.append({
                "func_sig": {
                    "name": function["name"],
                    "description": function["description"],
                    "parameters": function["parameters"],
                },
                "is_remove": False,
            })
            register_for_executor[function["name"]] = _executor(new, function["name"], self._exec_timeout)
        self._trial_functions = new
        self._advertised = new.names
        return register_for_llm, register_for_executor
