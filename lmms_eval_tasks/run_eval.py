"""``ai4va-fg eval``: run lmms-eval on the AI4VA-FG tasks without typing an include path.

.. code-block:: bash

    ai4va-fg eval [--dataset DIR_OR_HUB_ID] [--overlay DIR] LMMS_EVAL_ARGS...
    ai4va-fg eval --config recipes/eval/qwen2_5_vl_7b_hf.yaml
    ai4va-fg eval --dataset /data/ai4va_fg --model qwen2_5_vl --model_args pretrained=... --tasks ai4va_fg
    python -m lmms_eval_tasks.run_eval ...        (the same, without the ``ai4va-fg`` script)

Why a wrapper: lmms-eval 0.7.3 indexes tasks only from its own ``lmms_eval/tasks/`` folder and the
``--include_path`` folders (CLI flag or ``include_path:`` in a ``--config`` file). It has no task
entry point (the ``lmms_eval.models`` entry-point group registers models only), and
``LMMS_EVAL_PLUGINS`` adds ``<plugin>.tasks`` to the include path only after the ``TaskManager`` was
built, so ``lmms-eval --tasks ai4va_fg`` alone prints "Tasks not found" -- and exits 0, as it does
for every error raised during an evaluation (``cli_evaluate`` catches it, prints it and moves on).

What it does:

1. writes the task overlay of :func:`lmms_eval_tasks.path.write_overlay` for ``--dataset`` (default
   ``build/ai4va_fg``, what ``make demo`` builds; a built folder or a Hub dataset id): every task
   pointed at that dataset, only the tasks a local build has;
2. checks before lmms-eval starts that every AI4VA-FG task or group asked for (``--tasks``, else the
   ``tasks`` of each ``--config`` entry) is in the overlay, and says which dataset config is missing
   and how to build it when not;
3. runs lmms-eval's own CLI (``lmms_eval.__main__.cli_evaluate``, every other argument passed through
   unchanged) with the overlay first on the include path (a ``--config`` file's ``include_path``
   holding the AI4VA-FG task folder is replaced by the overlay; other include paths are kept);
4. when a Panel Understanding task is asked for (by name, through a group or a pattern), validates the
   judge settings (``AI4VA_FG_JUDGE_*``, a ``--config`` file's ``env:`` blocks applied as lmms-eval
   applies them) before lmms-eval starts, instead of at the first judged sample after the model loaded;
5. records every evaluation that raised or produced no results, and exits non-zero with one line per
   failure (a dataset config missing from the build is named, not hidden in a ``tenacity.RetryError``).

Exit codes: 0 every evaluation finished; 1 an evaluation failed inside lmms-eval (each failure on one
``ai4va-fg eval: error:`` line); 2 bad input found before lmms-eval starts (a missing build, a task
the build does not have, an unknown AI4VA-FG task, no ``--tasks``, an unreadable ``--config``, a bad
judge setting when Panel Understanding is evaluated) or lmms-eval's own argument errors.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from pathlib import Path

import yaml

from . import path as task_path

DEFAULT_DATASET = "build/ai4va_fg"
"""``--dataset`` when none is given: the folder ``make demo`` builds, relative to the working directory."""

PROG = "ai4va-fg eval"
BUILD_HINT = "ai4va-fg build --source auto --path DATA --out {out}"
"""The command that builds a dataset folder (``DATA``: the annotated pages, see ``ai4va-fg build --help``)."""


class EvalInputError(ValueError):
    """Bad input found before lmms-eval starts (exit code 2); the message is one line."""


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, add_help=False, allow_abbrev=False,
        description="Run lmms-eval on the AI4VA-FG tasks of a built dataset (or a Hub dataset id). Every "
                    "argument not listed here goes to lmms-eval unchanged (see `lmms-eval --help`); the "
                    "include path is set to a task overlay for --dataset.",
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--dataset", default=None,
                        help=f"built AI4VA-FG folder or Hub dataset id (default: {DEFAULT_DATASET}, which must exist)")
    parser.add_argument("--overlay", default=None,
                        help="where to write the task overlay (default: ~/.cache/ai4va_fg/lmms_eval_tasks/<hash>)")
    return parser


def _lmms_view(args: list[str]) -> argparse.Namespace:
    """The lmms-eval arguments this wrapper reads before lmms-eval starts (``--tasks``, ``--config``)."""
    parser = argparse.ArgumentParser(prog="lmms-eval", add_help=False)
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--config", default=None)
    view, _ = parser.parse_known_args(args)
    return view


def _build_hint(dataset: str) -> str:
    return f"build it with `{BUILD_HINT.format(out=dataset)}`"


def resolve_dataset(dataset: str | None) -> str:
    """The ``--dataset`` value: an existing folder made absolute, or a Hub id (``owner/name``).

    Raises:
        EvalInputError: the default ``build/ai4va_fg`` does not exist, or the value is a file or
            neither an existing folder nor a Hub id.
    """
    if dataset is None:
        if not Path(DEFAULT_DATASET).is_dir():
            raise EvalInputError(
                f"no dataset at {DEFAULT_DATASET} (relative to {Path.cwd()}): {_build_hint(DEFAULT_DATASET)}, "
                "or pass --dataset DIR_OR_HUB_ID")
        dataset = DEFAULT_DATASET
    try:
        return task_path._resolve_dataset(dataset)
    except ValueError as exc:
        raise EvalInputError(f"{exc}; {_build_hint(dataset)}") from None


def _read_configs(config: str) -> list[dict]:
    """The entries of an lmms-eval ``--config`` file (a mapping or a list of them)."""
    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvalInputError(f"--config {config}: {str(exc).splitlines()[0]}") from None
    entries = data if isinstance(data, list) else [data]
    if not all(isinstance(e, dict) for e in entries):
        raise EvalInputError(f"--config {config}: expected a mapping of lmms-eval arguments or a list of them")
    return entries


def requested_tasks(lmms_args: list[str]) -> list[str]:
    """Every task name the lmms-eval arguments ask for: ``--tasks``, else each ``--config`` entry's ``tasks``.

    Raises:
        EvalInputError: no task given anywhere (lmms-eval would only log an error and exit 0), or an
            unreadable ``--config``.
    """
    view = _lmms_view(lmms_args)
    if view.tasks is not None:
        lists = [view.tasks]
    elif view.config is not None:
        lists = [entry.get("tasks") for entry in _read_configs(view.config)]
    else:
        lists = []
    names: list[str] = []
    for value in lists:
        if not value:
            raise EvalInputError("no task to evaluate: pass --tasks (e.g. --tasks ai4va_fg) or a --config with `tasks:`")
        items = value if isinstance(value, list) else str(value).split(",")
        names += [str(t).strip() for t in items if str(t).strip()]
    if not names:
        raise EvalInputError("no task to evaluate: pass --tasks (e.g. --tasks ai4va_fg) or a --config with `tasks:`")
    return names


def _catalogue() -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """The installed AI4VA-FG tasks (name -> dataset config), groups (name -> member tasks) and the
    name defined by each task folder file (file name -> task or group name)."""
    tasks, groups, files = {}, {}, {}
    for src in sorted(task_path.TASKS_DIR.glob("*.yaml")):
        fields = task_path._task_fields(src)
        if "group" in fields:
            groups[fields["group"]] = list(fields.get("task") or [])
            files[src.name] = fields["group"]
        elif "task" in fields:
            tasks[fields["task"]] = fields.get("dataset_name")
            files[src.name] = fields["task"]
    return tasks, groups, files


def check_tasks(names: list[str], overlay: Path, dataset: str) -> None:
    """Every AI4VA-FG task or group in ``names`` must be in the overlay written for ``dataset``.

    Names of other lmms-eval tasks, wildcards and YAML paths are left to lmms-eval.

    Raises:
        EvalInputError: one line naming the task, the dataset config it needs and how to build it;
            or an unknown AI4VA-FG name with the names that exist.
    """
    tasks, groups, files = _catalogue()
    present = {files[src.name] for src in overlay.glob("*.yaml") if src.name in files}  # same file names
    local = Path(dataset).is_dir()
    configs = task_path.task_configs_with_test_split(dataset) if local else None
    has = ", ".join(sorted(configs)) if configs else "none"
    for name in names:
        if not name.startswith("ai4va_fg") or "*" in name or os.path.exists(name) or name in present:
            continue
        if name in tasks:
            raise EvalInputError(
                f"task {name} needs the dataset config '{tasks[name]}' with a test split, which {dataset} does not "
                f"have (its task configs: {has}); {_build_hint(dataset)} from annotations that have that task")
        if name in groups:
            needed = sorted({tasks[t] for t in groups[name] if t in tasks})
            raise EvalInputError(
                f"group {name}: none of its tasks' dataset configs ({', '.join(needed)}) has a test split in "
                f"{dataset} (its task configs: {has}); {_build_hint(dataset)} from annotations that have them")
        raise EvalInputError(
            f"unknown AI4VA-FG task or group {name!r}; groups: {', '.join(sorted(groups))}; tasks: "
            f"ai4va_fg_<task>[_think|_tool|_zoom|_zoom_entity] with <task> one of {', '.join(sorted(set(tasks.values())))}")


JUDGED_CONFIG = "panel_understanding"
"""The dataset config whose tasks the LLM judge scores (:mod:`lmms_eval_tasks.judge`)."""

_ENV_REFERENCE = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # what os.path.expandvars replaces (POSIX)
_JUDGE_VARIABLE = re.compile(r"\bAI4VA_FG_JUDGE_\w+")


def judged_tasks(names: list[str], overlay: Path) -> list[str]:
    """The Panel Understanding tasks (scored by the LLM judge) that ``names`` asks for and the overlay has.

    A task counts when it is named, in a group that is named (nested groups followed) or matched by a
    shell-style pattern as lmms-eval matches ``--tasks`` (``fnmatch``); names the overlay does not
    hold (other lmms-eval tasks, YAML paths) are not AI4VA-FG tasks.
    """
    tasks, groups, files = _catalogue()
    present = sorted(files[src.name] for src in overlay.glob("*.yaml") if src.name in files)
    todo = [match for name in names for match in fnmatch.filter(present, name)]
    seen: set[str] = set()
    judged: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen or name not in present:
            continue
        seen.add(name)
        if name in groups:
            todo += groups[name]
        elif tasks.get(name) == JUDGED_CONFIG:
            judged.append(name)
    return sorted(judged)


def _expandvars(value: str, env: dict[str, str]) -> str:
    """``os.path.expandvars(value)`` (POSIX rules) with the variables of ``env`` instead of ``os.environ``."""
    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name.startswith("{") and name.endswith("}"):
            name = name[1:-1]
        return env.get(name, m.group(0))

    return _ENV_REFERENCE.sub(replace, value) if "$" in value else value


def judge_environment(lmms_args: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The environment lmms-eval evaluates in: ``os.environ`` with the ``env:`` block of every ``--config``
    entry applied in order, values expanded as lmms-eval does (``os.path.expandvars``) before any runs.

    Returns:
        The environment, and for each variable an ``env:`` block set, the config file that set it.

    Raises:
        EvalInputError: an unreadable ``--config``, or an ``env:`` that is not a mapping (lmms-eval would
            refuse it).
    """
    env = dict(os.environ)
    origin: dict[str, str] = {}
    config = _lmms_view(lmms_args).config
    if config is None:
        return env, origin
    for entry in _read_configs(config):
        block = entry.get("env")
        if not block:
            continue
        if not isinstance(block, dict):
            raise EvalInputError(f"--config {config}: 'env' must be a mapping of variable names to values, "
                                 f"got {type(block).__name__}")
        for key, value in block.items():
            env[str(key)] = _expandvars(str(value), env)
            origin[str(key)] = config
    return env, origin


def check_judge(names: list[str], overlay: Path, lmms_args: list[str]) -> None:
    """Validate the judge settings (``AI4VA_FG_JUDGE_*``) now when a Panel Understanding task will run.

    The judge is built at the first Panel Understanding sample (:func:`lmms_eval_tasks.judge.get_judge`),
    after the model is loaded and the other tasks ran; a bad setting is found here instead, in the
    environment lmms-eval will have (a ``--config`` file's ``env:`` blocks included). No request is made.

    Raises:
        EvalInputError: one line naming the bad setting (and the config file that set it, if one did).
    """
    judged = judged_tasks(names, overlay)
    if not judged:
        return
    env, origin = judge_environment(lmms_args)
    from ai4va_fg_dataset.core.llm import JudgeSettings

    try:
        JudgeSettings.from_env(env)
    except ValueError as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        variable = _JUDGE_VARIABLE.search(message)
        where = f", set in the env: block of --config {origin[variable.group(0)]}" if (
            variable and variable.group(0) in origin) else ""
        raise EvalInputError(f"bad judge setting: {message} (the LLM judge scores {', '.join(judged)}{where}; "
                             "see lmms_eval_tasks/judge.py for the AI4VA_FG_JUDGE_* variables)") from None


def _retry_inner(exc: BaseException) -> BaseException | None:
    """The error of a ``tenacity.RetryError``'s last attempt (``None`` for anything else)."""
    attempt = getattr(exc, "last_attempt", None)
    if attempt is None or not hasattr(attempt, "exception"):
        return None
    try:
        return attempt.exception()
    except Exception:  # noqa: BLE001 - a cancelled attempt has no exception to show
        return None


def error_chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then what it wraps: a ``tenacity.RetryError``'s last error, ``__cause__``, ``__context__``."""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = _retry_inner(exc) or exc.__cause__ or exc.__context__
    return chain


def root_cause(exc: BaseException) -> BaseException:
    """``exc`` with ``tenacity.RetryError`` wrappers removed (the error the retried call raised)."""
    while (inner := _retry_inner(exc)) is not None:
        exc = inner
    return exc


def describe_failure(exc: BaseException, dataset: str) -> tuple[str, bool]:
    """One line for an error raised by an lmms-eval evaluation, and whether it is a known input error.

    Known (the traceback adds nothing): a dataset config missing from the data (``BuilderConfig 'x'
    not found``, hidden by lmms-eval's download retries in a ``tenacity.RetryError``) and ``Tasks not
    found``. Anything else: the error's type and first line, retry wrappers removed.
    """
    for err in error_chain(exc):
        text = str(err)
        m = re.search(r"BuilderConfig '([^']+)' not found\. Available: (\[[^\]]*\])", text)
        if m:
            config, available = m.groups()
            if config in task_path.task_configs():
                return (f"the dataset {dataset} has no config '{config}' (available: {available}): the build has "
                        f"no {config} rows; {_build_hint(dataset)} from annotations that have that task"), True
            return f"dataset config '{config}' not found (available: {available})", True
        m = re.search(r"Tasks not found: (.*?)\. Try", text)
        if m:
            return (f"tasks not found: {m.group(1)} (neither an lmms-eval task nor an AI4VA-FG task on {dataset}; "
                    f"`{PROG} --tasks list` lists them all)"), True
    cause = root_cause(exc)
    text = str(cause).strip()
    line = f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__
    if type(cause).__module__.startswith("datasets") or isinstance(cause, (FileNotFoundError, ConnectionError)):
        line += f" (loading {dataset}; if it is not reachable, {_build_hint('DIR')} and pass --dataset DIR)"
    return line, False


def _include_paths(overlay: Path, given) -> list[str]:
    """The overlay first (its names win in lmms-eval's index), then every other include path that does
    not hold AI4VA-FG tasks (a config's ``include_path: lmms_eval_tasks/ai4va_fg`` is replaced)."""
    given = [given] if isinstance(given, (str, os.PathLike)) else list(given or [])
    keep = [str(p) for p in given
            if Path(p).resolve() != task_path.TASKS_DIR and not (Path(p) / "ai4va_fg.yaml").is_file()]
    return [str(overlay), *keep]


def run_lmms_eval(lmms_args: list[str], overlay: Path, dataset: str) -> tuple[list[str], int]:
    """Run lmms-eval's CLI in this process with ``lmms_args`` and the overlay on the include path.

    Returns:
        The failures (one line each: the model, the tasks and the error) and lmms-eval's own exit
        code (0 unless it called ``sys.exit`` with a code, e.g. an argument error).
    """
    import lmms_eval.__main__ as lmms_main

    failures: list[str] = []
    recorded: list[BaseException] = []
    real_single = lmms_main.cli_evaluate_single

    def single(args):
        args.include_path = _include_paths(overlay, args.include_path)
        label = f"{args.model} on {args.tasks}"
        try:
            results, samples = real_single(args)
        except Exception as exc:
            line, known = describe_failure(exc, dataset)
            failures.append(f"{label}: {line}")
            recorded.append(exc)
            if known:
                return None, None  # lmms-eval records a failed run; no traceback for an input error
            raise  # lmms-eval prints the traceback, records the failure and goes on with the next config
        if results is None and int(os.environ.get("RANK", "0")) == 0:
            failures.append(f"{label}: lmms-eval returned no results")
        return results, samples

    argv = sys.argv
    sys.argv = ["lmms-eval", *lmms_args]
    lmms_main.cli_evaluate_single = single
    code = 0
    try:
        lmms_main.cli_evaluate()
    except SystemExit as exc:  # `--tasks list`, argument errors: lmms-eval's own exit code
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            failures.append(str(exc.code))
    except Exception as exc:  # noqa: BLE001 - config errors; with --verbosity DEBUG lmms-eval re-raises
        if all(exc is not seen for seen in recorded):
            failures.append(describe_failure(exc, dataset)[0])
    finally:
        lmms_main.cli_evaluate_single = real_single
        sys.argv = argv
    return failures, code


def main(argv: list[str] | None = None) -> int:
    """``ai4va-fg eval [--dataset D] [--overlay DIR] LMMS_EVAL_ARGS...`` (see the module docstring)."""
    parser = _own_parser()
    own, lmms_args = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if own.help:
        parser.print_help()
        print("\nAll other arguments are lmms-eval's (`lmms-eval --help`), e.g. --model, --model_args, --tasks, "
              "--config, --limit, --output_path, --log_samples.")
        return 0
    try:
        dataset = resolve_dataset(own.dataset)
        names = requested_tasks(lmms_args)
        overlay = task_path.write_overlay(dataset, own.overlay)
        check_tasks(names, overlay, dataset)
        check_judge(names, overlay, lmms_args)
    except EvalInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # write_overlay: a build without any task
        print(f"{PROG}: error: {exc}; {_build_hint(own.dataset or DEFAULT_DATASET)}", file=sys.stderr)
        return 2
    if not Path(dataset).is_dir():
        print(f"{PROG}: note: {dataset} is not a local folder: loading it as a Hub dataset id", file=sys.stderr)
    else:
        configs = task_path.task_configs_with_test_split(dataset)
        missing = sorted(task_path.task_configs() - configs) if configs is not None else []
        if missing:
            print(f"{PROG}: note: {dataset} has no test split of {', '.join(missing)}: those tasks are left out "
                  "and the groups run on the others", file=sys.stderr)
    try:
        failures, code = run_lmms_eval(lmms_args, overlay, dataset)
    except ImportError as exc:
        print(f"{PROG}: error: lmms-eval is not installed ({exc}); install the eval extra: "
              "pip install -e \".[eval]\"", file=sys.stderr)
        return 2
    for line in failures:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    if code:
        return code
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
