"""`train`, `resume`, `evaluate`, `grade`: the CLI's commands from Python, with the same semantics,
defaults and run directory. Keyword arguments become the CLI's flags and are parsed by the CLI's own
parser, so a mistake gets the CLI's message (as `InputError`)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _agentopt
from ._inputs import config_list, data_path, metric_spec, registry_spec
from ._registry import Registry
from ._run import Evaluation, Run

Data = Union[str, "os.PathLike[str]", Sequence[Dict[str, Any]]]
Config = Union[str, "os.PathLike[str]", Sequence[Dict[str, Any]], Dict[str, Any], Any]
Functions = Union[str, "os.PathLike[str]", Registry]


def _live() -> bool:
    """Redraw one progress line where `\\r` works: a terminal or a notebook."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def _flag(argv: List[str], name: str, value: Any) -> None:
    """`--name=value` for a set value (`=`, so a value starting with `-` is a value, checked as the CLI
    checks it), `--name` for True, nothing for None/False, the flag once per item for a repeatable
    flag (a list or tuple; a lone string is one item)."""
    if value is None or value is False:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _flag(argv, name, item)
        return
    flag = "--" + name.replace("_", "-")
    if value is True:
        argv.append(flag)
    else:
        argv.append(f"{flag}={os.fspath(value) if isinstance(value, os.PathLike) else value}")


def _model_flags(argv: List[str], *, model, exec_timeout, cache, cache_seed, runs_dir, unsafe_no_sandbox):
    _flag(argv, "model", model)
    _flag(argv, "exec_timeout", float(exec_timeout))
    # Both when both are asked for: the CLI refuses the pair, and so does this.
    _flag(argv, "no_cache", not cache)
    _flag(argv, "cache_seed", cache_seed)
    _flag(argv, "runs_dir", runs_dir)
    _flag(argv, "unsafe_no_sandbox", unsafe_no_sandbox)


def _task_flags(argv: List[str], runs_dir: str, *, task, system, opening, metric):
    """`--task`, `--system FILE`, `--opening FILE`, `--metric` (a name, or a function: see
    `metric_spec`)."""
    _flag(argv, "task", task)
    _flag(argv, "system", system)
    _flag(argv, "opening", opening)
    _flag(argv, "metric", metric_spec(metric, runs_dir))


def train(
    data: Optional[Data] = None,
    *,
    train: Optional[Data] = None,
    test: Optional[Data] = None,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
    val: Optional[Data] = None,
    val_size: Optional[int] = None,
    select: Optional[str] = None,
    accept: Optional[str] = None,
    proposals: int = 1,
    subject: Union[str, Sequence[str]] = (),
    allow_overlap: bool = False,
    config: Optional[Config] = None,
    model: Optional[str] = None,
    optimizer_model: Optional[str] = None,
    epochs: int = 10,
    actions_per_step: int = 3,
    patience: int = 3,
    concurrency: int = 8,
    seed: int = 0,
    functions: Optional[Functions] = None,
    run: Optional[str] = None,
    runs_dir: Union[str, "os.PathLike[str]"] = "runs",
    no_eval: bool = False,
    max_usd: Optional[float] = None,
    export: Optional[str] = None,
    task: Optional[str] = None,
    system: Optional[Union[str, "os.PathLike[str]"]] = None,
    opening: Optional[Union[str, "os.PathLike[str]"]] = None,
    metric: Optional[Union[str, Callable[..., Any]]] = None,
    exec_timeout: float = 10.0,
    cache: bool = True,
    no_cache: bool = False,
    cache_seed: Optional[int] = None,
    unsafe_no_sandbox: bool = False,
    progress: bool = True,
) -> Run:
    """`agentopt train`: every flag as a keyword (snake_case; `subject` takes one or a list, `cache=False`
    is `no_cache=True`). `data`, `train` and `test` are paths or
    lists of dicts (problems); `config` a path, AG2's config_list or llm_config (None: env
    OAI_CONFIG_LIST, ./OAI_CONFIG_LIST, then the embedded model); `functions` a registry spec or a
    `Registry`. Returns the `Run`; Ctrl-C raises `Interrupted` with the run left resumable."""
    runs_dir = os.fspath(runs_dir)
    argv: List[str] = []
    _flag(argv, "train", data_path(train, runs_dir, "train"))
    _flag(argv, "test", data_path(test, runs_dir, "test"))
    _flag(argv, "train_size", train_size)
    _flag(argv, "test_size", test_size)
    _flag(argv, "val", data_path(val, runs_dir, "val"))
    _flag(argv, "val_size", val_size)
    _flag(argv, "select", select)
    _flag(argv, "accept", accept)
    _flag(argv, "proposals", int(proposals))
    _flag(argv, "subject", subject)
    _flag(argv, "allow_overlap", allow_overlap)
    for name, value in [("epochs", epochs), ("actions_per_step", actions_per_step), ("patience", patience),
                        ("concurrency", concurrency), ("seed", seed)]:
        _flag(argv, name, int(value))
    _flag(argv, "optimizer_model", optimizer_model)
    _flag(argv, "functions", registry_spec(functions, runs_dir))
    _flag(argv, "run", run)
    _flag(argv, "no_eval", no_eval)
    _flag(argv, "max_usd", max_usd)
    _flag(argv, "export", export)
    _task_flags(argv, runs_dir, task=task, system=system, opening=opening, metric=metric)
    _model_flags(argv, model=model, exec_timeout=exec_timeout, cache=cache and not no_cache, cache_seed=cache_seed,
                 runs_dir=runs_dir, unsafe_no_sandbox=unsafe_no_sandbox)
    flags, inline = config_list(config)
    data_file = data_path(data, runs_dir, "data")
    positional = ["--", data_file] if data_file is not None else []
    result = json.loads(_agentopt.train(argv + flags + positional, inline, progress, _live()))
    return _finished(result)


def resume(
    run: Union[str, "os.PathLike[str]"],
    *,
    runs_dir: Union[str, "os.PathLike[str]"] = "runs",
    config: Optional[Config] = None,
    max_usd: Optional[float] = None,
    unsafe_no_sandbox: bool = False,
    progress: bool = True,
) -> Run:
    """`agentopt resume`: continues a stopped run where it stopped (a run started with an in-memory
    config list needs `config` again: it was never saved)."""
    argv: List[str] = []
    _flag(argv, "runs_dir", os.fspath(runs_dir))
    _flag(argv, "max_usd", max_usd)
    _flag(argv, "unsafe_no_sandbox", unsafe_no_sandbox)
    flags, inline = config_list(config)
    result = json.loads(_agentopt.resume(argv + flags + ["--", os.fspath(run)], inline, progress, _live()))
    return _finished(result)


def _finished(result: Dict[str, Any]) -> Run:
    run = Run(result["run_dir"])
    run.exported = result.get("exported")
    return run


def evaluate(
    test: Data,
    *,
    functions: Optional[Functions] = None,
    run: Optional[str] = None,
    test_size: Optional[int] = None,
    subject: Union[str, Sequence[str]] = (),
    config: Optional[Config] = None,
    model: Optional[str] = None,
    concurrency: int = 8,
    seed: int = 0,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    max_usd: Optional[float] = None,
    runs_dir: Union[str, "os.PathLike[str]"] = "runs",
    task: Optional[str] = None,
    system: Optional[Union[str, "os.PathLike[str]"]] = None,
    opening: Optional[Union[str, "os.PathLike[str]"]] = None,
    metric: Optional[Union[str, Callable[..., Any]]] = None,
    exec_timeout: float = 10.0,
    cache: bool = True,
    no_cache: bool = False,
    cache_seed: Optional[int] = None,
    unsafe_no_sandbox: bool = False,
    progress: bool = True,
) -> Evaluation:
    """`agentopt eval`: the success rate of `functions` (a spec or a `Registry`; default none) or of a
    run's registry (`run="NAME"`, `"NAME@EPOCH"`) on `test` (a path or a list of dicts)."""
    runs_dir = os.fspath(runs_dir)
    argv: List[str] = []
    _flag(argv, "test", data_path(test, runs_dir, "test"))
    _flag(argv, "functions", registry_spec(functions, runs_dir))
    _flag(argv, "run", run)
    _flag(argv, "test_size", test_size)
    _flag(argv, "subject", subject)
    _flag(argv, "concurrency", int(concurrency))
    _flag(argv, "seed", int(seed))
    _flag(argv, "out", out)
    _flag(argv, "max_usd", max_usd)
    _task_flags(argv, runs_dir, task=task, system=system, opening=opening, metric=metric)
    _model_flags(argv, model=model, exec_timeout=exec_timeout, cache=cache and not no_cache, cache_seed=cache_seed,
                 runs_dir=runs_dir, unsafe_no_sandbox=unsafe_no_sandbox)
    flags, inline = config_list(config)
    return Evaluation(json.loads(_agentopt.evaluate(argv + flags, inline, progress, _live())))


def grade(given: str, reference: str) -> bool:
    """Whether answer `given` equals `reference` by agentopt's checker (as `agentopt grade`)."""
    equal, _decided_by = _agentopt.grade(str(given), str(reference))
    return equal
