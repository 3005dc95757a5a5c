"""Python values turned into what the CLI takes: data and registries given as objects are written once
to `RUNS_DIR/.inputs/` (content-addressed, so `resume` finds the same file and hash), config lists
given as objects stay in memory (their keys never reach a file)."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any, List, Optional, Tuple

from ._errors import InputError

INPUTS_DIR = ".inputs"


SUFFIXES = {"registry": ".json", "metric": ".py"}


def _write_once(runs_dir: str, name: str, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    folder = Path(runs_dir) / INPUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{digest}{SUFFIXES.get(name, '.jsonl')}"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return str(path.resolve())


def data_path(value: Any, runs_dir: str, what: str) -> Optional[str]:
    """A dataset argument as a file path: a path as it is, a list of dicts as a JSON-lines file."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        lines = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise InputError(f"`{what}`: item {i} is a {type(item).__name__}, not a dict")
            lines.append(json.dumps(item, ensure_ascii=False, sort_keys=True))
        return _write_once(runs_dir, what, "".join(line + "\n" for line in lines))
    raise InputError(f"`{what}`: give a path or a list of dicts, not a {type(value).__name__}")


def registry_spec(value: Any, runs_dir: str, what: str = "functions") -> Optional[str]:
    """A registry argument as the CLI's REGISTRY: a path or spec as it is, a `Registry` saved to a file."""
    from ._registry import Registry

    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, Registry):
        return _write_once(runs_dir, "registry", value.to_json())
    raise InputError(f"`{what}`: give a path, functions/NAME, RUN[@EPOCH] or a Registry")


def metric_spec(value: Any, runs_dir: str) -> Optional[str]:
    """A metric argument as the CLI's `--metric`: a name as it is; a Python function as
    `python:FILE:NAME`, its source written to a file (it runs in the sandbox, not in this process, so
    it must import what it needs inside itself)."""
    if value is None or isinstance(value, str):
        return value
    if callable(value):
        name = getattr(value, "__name__", "")
        if not name.isidentifier():
            raise InputError("`metric`: a function given as the metric must be a named `def`, not a lambda")
        try:
            source = textwrap.dedent(inspect.getsource(value))
        except (OSError, TypeError) as e:
            raise InputError(
                f"`metric`: the source of `{name}` cannot be read ({e}); put it in a file and pass "
                f"metric='python:FILE.py:{name}'"
            ) from None
        return f"python:{_write_once(runs_dir, 'metric', source)}:{name}"
    raise InputError(f"`metric`: give a metric name or a function, not a {type(value).__name__}")


def config_list(config: Any) -> Tuple[List[str], Optional[str]]:
    """`(flags, inline JSON)` for a config argument: a path (`--config`), AG2's config_list (a list of
    dicts), an llm_config dict with `config_list`, or an `autogen.LLMConfig`; None: the CLI's lookup
    (env OAI_CONFIG_LIST, ./OAI_CONFIG_LIST, then the embedded model)."""
    if config is None:
        return [], None
    if isinstance(config, (str, os.PathLike)):
        return [f"--config={os.fspath(config)}"], None
    entries = ag2_config_list(config)
    return [], json.dumps(entries)


def ag2_config_list(config: Any) -> List[dict]:
    """The entries of AG2's config forms, with unset (None) fields left out as AG2 leaves them out."""
    if hasattr(config, "model_dump"):  # autogen.LLMConfig (pydantic)
        try:
            config = config.model_dump(mode="json", exclude_none=True)
        except TypeError:
            config = config.model_dump()
    if isinstance(config, dict):
        if "config_list" in config:
            config = config["config_list"]
        elif "model" in config:
            config = [config]
    if isinstance(config, dict):
        config = [config]
    if not isinstance(config, (list, tuple)):
        raise InputError(f"`config`: give a path, a config_list or an llm_config, not a {type(config).__name__}")
    entries = []
    for i, entry in enumerate(config):
        if hasattr(entry, "model_dump"):
            entry = entry.model_dump(mode="json", exclude_none=True)
        if not isinstance(entry, dict):
            raise InputError(f"`config`: entry {i + 1} is a {type(entry).__name__}, not a dict")
        entries.append({k: v for k, v in entry.items() if v is not None})
    return entries


def hidden_paths(runs_dir: str = "runs") -> List[str]:
    """What code in the sandbox must not see when no command names it: the cache and the runs."""
    return [str(Path(".cache/agentopt").resolve()), str(Path(runs_dir).resolve())]
