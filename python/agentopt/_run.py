"""`Run` and `Epoch`: a run directory read back (the same files `agentopt runs show` reads), and
`Evaluation`: the outcome of `agentopt.evaluate`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ._errors import InputError
from ._registry import Registry


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_lines(path: Path) -> List[Dict[str, Any]]:
    """JSON lines; a torn last line (a kill mid-write) is left out, as the CLI leaves it out."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines) or (number == len(lines) - 1 and not lines[-1]):
                continue
            raise InputError(f"`{path}` line {number}: {e}") from None
    return records


class Epoch:
    """One epoch of a run: its registry and its conversation records."""

    def __init__(self, run: "Run", index: int) -> None:
        self.run = run
        self.index = index
        self.path = run.path / "epochs" / f"{index:03}"

    @property
    def registry(self) -> Registry:
        return Registry.load(self.path / "registry.json")

    @property
    def records(self) -> List[Dict[str, Any]]:
        return _read_lines(self.path / "conversations.jsonl")

    @property
    def history(self) -> Optional[Dict[str, Any]]:
        """This epoch's entry of `summary.json`'s history (score, decision), once it is decided."""
        for h in (self.run.summary or {}).get("history", []):
            if h.get("epoch") == self.index:
                return h
        return None

    def __repr__(self) -> str:
        return f"Epoch({self.run.name!r}, {self.index})"


class Run:
    """A run directory (`runs/NAME`): `info` (run.json), `summary` (summary.json), `epochs`, the best
    registry, the events and the before/after evaluation records."""

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = Path(path).resolve()
        # Where `train(export=NAME)` wrote the learned registry, when it did.
        self.exported: Optional[str] = None
        if not (self.path / "run.json").is_file():
            raise InputError(f"`{path}` is not a run directory (it has no run.json)")

    @classmethod
    def open(cls, run: Union[str, "os.PathLike[str]"], runs_dir: Union[str, "os.PathLike[str]"] = "runs") -> "Run":
        """A run by path, or by name under `runs_dir`."""
        direct = Path(run)
        if (direct / "run.json").is_file():
            return cls(direct)
        return cls(Path(runs_dir) / run)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info(self) -> Dict[str, Any]:
        return _read_json(self.path / "run.json")

    @property
    def status(self) -> str:
        return self.info["status"]

    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        path = self.path / "summary.json"
        return _read_json(path) if path.exists() else None

    @property
    def epochs(self) -> List[Epoch]:
        folder = self.path / "epochs"
        found = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        return [Epoch(self, i) for i in found]

    @property
    def best_epoch(self) -> Optional[int]:
        return (self.summary or {}).get("best_epoch")

    @property
    def best_registry(self) -> Registry:
        path = self.path / "best" / "registry.json"
        return Registry.load(path if path.exists() else self.path / "epochs" / "000" / "registry.json")

    @property
    def events(self) -> List[Dict[str, Any]]:
        return _read_lines(self.path / "events.jsonl")

    def eval_records(self, phase: str = "after") -> List[Dict[str, Any]]:
        """The test-set records of the evaluation `before` or `after` training."""
        if phase not in ("before", "after"):
            raise InputError("`phase`: `before` or `after`")
        return _read_lines(self.path / "eval" / f"{phase}.jsonl")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"


class Evaluation:
    """`agentopt.evaluate`'s outcome: `correct`, `total`, `errored` (not scored), `rate` (correct over
    scored problems), `records` (one per problem), `usage`, and the registry's `functions`."""

    def __init__(self, result: Dict[str, Any]) -> None:
        self.correct: int = result["correct"]
        self.total: int = result["total"]
        self.errored: int = result["errored"]
        self.rate: float = result["rate"]
        self.complete: bool = result["complete"]
        self.records: List[Dict[str, Any]] = result["records"]
        self.usage: Dict[str, Any] = result["usage"]
        self.functions: List[str] = result["functions"]
        self.registry: Optional[str] = result["registry"]

    def __repr__(self) -> str:
        scored = self.total - self.errored
        return f"Evaluation(rate={self.rate:.3f}, correct={self.correct}/{scored}, errored={self.errored})"
