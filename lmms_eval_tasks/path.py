"""Where lmms-eval finds the AI4VA-FG tasks of an installed package, and on which dataset.

lmms-eval 0.7.3's ``LMMS_EVAL_PLUGINS`` does not work for tasks (the plugin folders are added after
the task index is built: "Tasks not found", exit code 0), so the tasks are passed with
``--include_path``:

.. code-block:: bash

    # the installed task folder (dataset_path: build/ai4va_fg, relative to the working directory)
    lmms-eval --include_path "$(python -m lmms_eval_tasks.path)" --tasks ai4va_fg ...

    # the same tasks on another built folder or a Hub dataset id
    lmms-eval --include_path "$(python -m lmms_eval_tasks.path --dataset /data/ai4va_fg)" --tasks ai4va_fg ...

With ``--dataset``, a small overlay folder is written (default under
``~/.cache/ai4va_fg/lmms_eval_tasks/``): one YAML per task that ``include:``\\ s the installed task
by absolute path and sets ``dataset_path``, plus the group files. Only the overlay is passed to
lmms-eval, so task names do not clash. The overlay is rebuilt atomically on every call.

A local build need not have all seven tasks (real sources without character annotations feed only
the reordering tasks, and a small build may have no test rows of a task): the overlay then keeps only
the tasks whose config has a ``test`` split in the build's dataset card, the groups list only those,
and the ones left out are reported, so ``--tasks ai4va_fg`` runs on what the build has. Only the
per-task configs count: the card's all-tasks config ``default`` (every task's rows, told apart by the
``task`` column) is not a task and never keeps one in.

``ai4va-fg eval`` (:mod:`lmms_eval_tasks.run_eval`) writes this overlay and runs lmms-eval with it,
so the include path never has to be typed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

from ai4va_fg_dataset.core.atomic_dir import replacing_dir

TASKS_DIR = Path(__file__).resolve().parent / "ai4va_fg"
"""The installed ``ai4va_fg`` lmms-eval task folder (YAMLs + utils.py)."""

DEFAULT_OVERLAY_ROOT = Path("~/.cache/ai4va_fg/lmms_eval_tasks")


def tasks_dir() -> Path:
    """The folder to pass to ``lmms-eval --include_path`` for the default ``dataset_path``."""
    return TASKS_DIR


def _is_group(path: Path) -> bool:
    """Group files have a top-level ``group:`` key; task files a ``task:`` scalar."""
    return "group" in _task_fields(path)


def _resolve_dataset(dataset: str) -> str:
    """An existing local folder becomes absolute; anything else is taken as a Hub dataset id."""
    p = Path(dataset).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"--dataset {dataset!r} is a file; expected a built AI4VA-FG folder or a Hub id")
        return str(p.resolve())
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", dataset) or dataset.startswith("."):
        raise ValueError(f"--dataset {dataset!r} does not exist (expected a built AI4VA-FG folder or a Hub id owner/name)")
    return dataset


def _yaml_front_matter(path: Path) -> dict:
    """The YAML header of a ``README.md`` dataset card (``{}`` when it has none)."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


def configs_with_test_split(dataset_dir: str | os.PathLike) -> set[str] | None:
    """Config names of a local build that have a ``test`` split, from its card's ``configs:``.

    Every config is listed, the all-tasks ``default`` one included; :func:`task_configs_with_test_split`
    keeps only the tasks'. Returns ``None`` when the folder has no ``README.md`` card (nothing to
    restrict by).
    """
    card = Path(dataset_dir) / "README.md"
    if not card.is_file():
        return None
    configs = _yaml_front_matter(card).get("configs") or []
    return {
        c["config_name"]
        for c in configs
        if any(f.get("split") == "test" for f in c.get("data_files") or [] if isinstance(f, dict))
    }


def task_configs() -> set[str]:
    """The dataset config names the AI4VA-FG tasks read (their ``dataset_name``, one per task).

    A build's card also has the config ``default`` (all tasks in one table); it is not in this set.
    """
    return {f["dataset_name"] for f in map(_task_fields, TASKS_DIR.glob("*.yaml")) if "dataset_name" in f}


def task_configs_with_test_split(dataset_dir: str | os.PathLike) -> set[str] | None:
    """:func:`configs_with_test_split` restricted to the task configs (:func:`task_configs`).

    ``None`` when the folder has no dataset card; configs that are not a task's (``default``) are dropped.
    """
    present = configs_with_test_split(dataset_dir)
    return None if present is None else present & task_configs()


def _task_fields(path: Path) -> dict:
    """Plain ``key: value`` fields of a task YAML (``!function`` lines skipped)."""
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line)) or {}


def write_overlay(dataset: str, out: str | os.PathLike | None = None, omitted: list[str] | None = None) -> Path:
    """Write the task overlay pointing every AI4VA-FG task at ``dataset`` (see the module docstring).

    Args:
        dataset: a built AI4VA-FG folder (made absolute) or a Hub dataset id (``owner/name``).
        out: overlay folder; default ``~/.cache/ai4va_fg/lmms_eval_tasks/<hash of dataset>``.

        omitted: if given, gets one line per task or group left out of the overlay, with the reason.

    Returns:
        The overlay folder, to pass to ``--include_path``.

    Raises:
        ValueError: ``dataset`` looks like a local path that does not exist, or is a file, or a local
            build with no task that has a test split.
    """
    target = _resolve_dataset(dataset)
    present = task_configs_with_test_split(target) if Path(target).is_dir() else None
    omitted = omitted if omitted is not None else []
    kept: set[str] = set()
    task_files, group_files = [], []
    for src in sorted(TASKS_DIR.glob("*.yaml")):
        (group_files if _is_group(src) else task_files).append(src)
    for src in task_files:
        fields = _task_fields(src)
        if present is not None and fields.get("dataset_name") not in present:
            omitted.append(f"{fields['task']}: the build has no test split of {fields.get('dataset_name')!r}")
        else:
            kept.add(fields["task"])
    if not kept:
        raise ValueError(f"--dataset {dataset!r}: no AI4VA-FG task with a test split in its dataset card")
    if out is None:
        digest = hashlib.sha256(f"{target}|{TASKS_DIR}".encode()).hexdigest()[:16]
        out = DEFAULT_OVERLAY_ROOT.expanduser() / digest
    out = Path(out).expanduser().resolve()
    with replacing_dir(out) as tmp:
        quoted = target.replace("'", "''")
        for src in group_files:
            group = _task_fields(src)
            members = [t for t in group.get("task", []) if t in kept]
            if not members:
                omitted.append(f"{group['group']}: none of its tasks is in the build")
            elif len(members) == len(group.get("task", [])):
                shutil.copyfile(src, tmp / src.name)
            else:
                group["task"] = members
                (tmp / src.name).write_text(
                    f"# Overlay: {src.name} restricted to the tasks this build has.\n"
                    + yaml.safe_dump(group, sort_keys=False),
                    encoding="utf-8",
                )
        for src in task_files:
            if _task_fields(src)["task"] in kept:
                (tmp / src.name).write_text(
                    f"# Overlay written by `python -m lmms_eval_tasks.path --dataset`: {src.name} on another dataset.\n"
                    f"include: {src}\n"
                    f"dataset_path: '{quoted}'\n",
                    encoding="utf-8",
                )
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lmms_eval_tasks.path [--dataset PATH_OR_HUB_ID] [--out DIR]``: print the include path."""
    parser = argparse.ArgumentParser(
        prog="python -m lmms_eval_tasks.path",
        description="Print the folder to pass to `lmms-eval --include_path` for the AI4VA-FG tasks.",
    )
    parser.add_argument("--dataset", default=None,
                        help="built AI4VA-FG folder or Hub dataset id (default: the tasks' build/ai4va_fg)")
    parser.add_argument("--out", default=None, help="where to write the overlay (with --dataset)")
    args = parser.parse_args(argv)
    if args.dataset is None:
        if args.out:
            parser.error("--out needs --dataset")
        print(tasks_dir())
        return 0
    omitted: list[str] = []
    try:
        print(write_overlay(args.dataset, args.out, omitted))
        for line in omitted:
            print(f"left out: {line}", file=sys.stderr)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
