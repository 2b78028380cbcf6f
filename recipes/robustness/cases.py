"""The interface of the robustness cases (``recipes/robustness/run.py``).

A case module (``builder_cases.py``, ``parser_judge_cases.py``...) exposes ``CASES: list[Case]``
and imports this module as ``from cases import Case, Outcome, ...`` (``run.py`` puts this folder
first on ``sys.path``). Each :class:`Case` is one hostile input: ``run(workdir)`` sets the input up
in ``workdir`` (an empty temp folder of its own, removed afterwards), exercises the code (usually
the CLI in a subprocess, see :func:`run_cli`) and returns an :class:`Outcome`, or
``(Outcome, note)`` with a short note for the table. ``run.py`` runs every case in a child process
of its own session: a case that overruns ``timeout_s`` is killed with its subprocesses and counts as
``HANG``; an exception escaping ``run`` counts as ``TRACEBACK``.

Classification rules, shared by all modules:

* ``HANDLED``        the input was dealt with correctly (valid output, or a documented skip);
* ``CLEAR_ERROR``    refused with a one-line message naming what is wrong, non-zero exit, no traceback;
* ``SILENTLY_WRONG`` exit 0 (or a normal return) but the output is wrong / corrupt / stale;
* ``TRACEBACK``      a Python traceback reached the user (or an exception escaped the case);
* ``HANG``           the case overran its timeout (set by the runner, or returned by the case);
* ``DATA_LOST``      a file outside what the tool owns (a sentinel) was deleted or changed;
* ``NOT_RUN``        the case cannot run here (e.g. needs a non-root user); counted apart, never bad.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root (recipes/robustness/cases.py -> ../..)."""


class Outcome(Enum):
    """What a hostile case did; see the module docstring for the rules."""

    HANDLED = "handled"
    CLEAR_ERROR = "clear error"
    SILENTLY_WRONG = "silently wrong"
    TRACEBACK = "traceback"
    HANG = "hang"
    DATA_LOST = "data lost"
    NOT_RUN = "not run"

    @property
    def bad(self) -> bool:
        """True for the outcomes a release must not have (wrong, traceback, hang, data lost)."""
        return self in (Outcome.SILENTLY_WRONG, Outcome.TRACEBACK, Outcome.HANG, Outcome.DATA_LOST)


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes:
        name: short unique id, e.g. ``"out-is-checkout"``.
        area: what it exercises, e.g. ``"builder"``, ``"parser"``, ``"judge"``, ``"report"``.
        run: ``run(workdir: Path) -> Outcome | tuple[Outcome, str]``; ``workdir`` is an empty folder
            owned by the case (deleted afterwards).
        timeout_s: seconds after which the runner counts the case as ``HANG`` (wall clock).
        description: one line for the table (what the input is, what is expected).
        fast: True if the case takes a few seconds at most (the test suite runs only fast cases).
    """

    name: str
    area: str
    run: Callable[[Path], Outcome | tuple[Outcome, str]]
    timeout_s: float = 120.0
    description: str = ""
    fast: bool = True


@dataclass
class CliResult:
    """A finished (or timed-out) subprocess: ``returncode`` is None on timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    args: list[str] = field(default_factory=list)

    @property
    def traceback(self) -> bool:
        """True if a Python traceback was printed."""
        return "Traceback (most recent call last)" in self.stderr or "Traceback (most recent call last)" in self.stdout


def python() -> str:
    """The interpreter to run the CLI with: the repo's .venv if present, else this one."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_cli(args: Sequence[str], *, cwd: Path | None = None, timeout_s: float = 120.0,
            env: dict[str, str] | None = None) -> CliResult:
    """Run ``python -m ai4va_fg_dataset.cli ARGS`` offline; never raises on timeout (returncode None).

    ``cwd`` defaults to the repo root; ``env`` entries are added to the offline environment
    (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, PYTHONPATH=repo).
    """
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env or {})
    cmd = [python(), "-m", "ai4va_fg_dataset.cli", *map(str, args)]
    try:
        proc = subprocess.run(cmd, cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return CliResult(None, out, err, cmd)
    return CliResult(proc.returncode, proc.stdout, proc.stderr, cmd)


def classify(result: CliResult, *, expect_ok: bool) -> Outcome:
    """The generic outcome of a CLI run.

    ``expect_ok``: True if the right answer is exit 0 (e.g. the bad record is skipped under
    --skip-bad), False if it is a refusal. A traceback or timeout wins over everything; exit 0 when
    a refusal was expected is ``SILENTLY_WRONG``; a non-zero exit with no traceback is
    ``CLEAR_ERROR`` (when ``expect_ok`` it is still a clear error, not a crash). Cases that check
    the output's content refine ``HANDLED`` themselves.
    """
    if result.returncode is None:
        return Outcome.HANG
    if result.traceback:
        return Outcome.TRACEBACK
    if result.returncode == 0:
        return Outcome.HANDLED if expect_ok else Outcome.SILENTLY_WRONG
    return Outcome.CLEAR_ERROR
