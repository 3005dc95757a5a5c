"""The package's exceptions. The native module raises them with the CLI's messages (file, line, field)."""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Every agentopt failure."""


class InputError(Error, ValueError):
    """Bad input: a flag, a file, a field (the CLI exits 2 on these)."""


class RunError(Error, RuntimeError):
    """The job itself failed (the CLI exits 1); a training run can be resumed."""


class FunctionError(Error, RuntimeError):
    """A learned function raised, timed out or crashed in the sandbox; the message holds its error."""


class Interrupted(Error, KeyboardInterrupt):
    """A KeyboardInterrupt stopped the job at a safe point; `run_dir` (training) says what to resume."""

    def __init__(self, message: str, run_dir: Optional[str] = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir
