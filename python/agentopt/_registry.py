"""`Registry`: a function list (the learned "weights") — load, save, export for AG2, and call one of
its functions in the sandbox."""

from __future__ import annotations

import ast
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _agentopt
from ._errors import FunctionError, InputError
from ._inputs import hidden_paths

PathLike = Union[str, "os.PathLike[str]"]


def _literal(text: Optional[str]) -> Any:
    """A return value's repr back as the value when it is a Python literal, else the repr itself."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


class Registry:
    """A list of functions, each a dict with `name`, `description`, `parameters` (a JSON Schema),
    `packages` and `code` (Python defining the function)."""

    #: Wall-clock limit of one `call`, in seconds (the CLI's `--exec-timeout` default).
    exec_timeout: float = 10.0

    def __init__(self, functions: Optional[Iterable[Dict[str, Any]]] = None) -> None:
        self.functions: List[Dict[str, Any]] = [dict(f) for f in (functions or [])]
        # The native side checks the shape: a mistake shows here, not at the first call.
        if self.functions:
            self.functions = json.loads(_agentopt.registry_load_json(self.to_json()))["functions"]

    @classmethod
    def load(cls, path: PathLike) -> "Registry":
        """Reads any format `agentopt functions import` takes: agentopt's, its autogen export, AG2's list."""
        registry = cls()
        registry.functions = json.loads(_agentopt.registry_load(os.fspath(path)))["functions"]
        return registry

    @property
    def names(self) -> List[str]:
        return [f["name"] for f in self.functions]

    def __len__(self) -> int:
        return len(self.functions)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Dict[str, Any]:
        for f in self.functions:
            if f["name"] == name:
                return f
        raise KeyError(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and self.functions == other.functions

    def __repr__(self) -> str:
        return f"Registry({self.names!r})"

    def to_json(self) -> str:
        return json.dumps({"functions": self.functions})

    def save(self, path: PathLike) -> None:
        """Writes agentopt's format (atomically)."""
        _agentopt.registry_save(self.to_json(), os.fspath(path))

    def to_autogen(self) -> Dict[str, Any]:
        """Everything AG2 needs, in the shapes its APIs take (as `agentopt functions export --format autogen`)."""
        return json.loads(_agentopt.registry_to_autogen(self.to_json()))

    def check(self, exec_timeout: Optional[float] = None) -> None:
        """Checks each function in the sandbox as `--functions` registries are checked (defines it,
        packages import, schema fits, finishes within `exec_timeout`, default `self.exec_timeout`);
        raises `InputError` naming the one at fault."""
        limit = self.exec_timeout if exec_timeout is None else exec_timeout
        _agentopt.registry_check(self.to_json(), "registry", float(limit), hidden_paths())

    def call(self, name: str, /, **arguments: Any) -> Any:
        """Runs `name`'s own code with `arguments` (every keyword goes to the function) in a fresh
        sandbox session, within `self.exec_timeout` seconds, and returns its return value (as a Python
        value when its repr is a literal, else the repr). Raises `FunctionError` when the function
        raises, times out or crashes."""
        status, _stdout, stderr, result, _text = self._call(name, arguments, self.exec_timeout)
        if status != "ok":
            raise FunctionError(f"`{name}` failed ({status}): {stderr.strip()}")
        return _literal(result)

    def _call(self, name: str, arguments: Dict[str, Any], exec_timeout: float):
        if name not in self:
            raise InputError(f"no function named `{name}` in the registry (it has: {', '.join(self.names)})")
        return _agentopt.call_function(
            self.to_json(), name, json.dumps(arguments), float(exec_timeout), hidden_paths()
        )
