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
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent / "ai4va_fg"
"""The installed ``ai4va_fg`` lmms-eval task folder (YAMLs + utils.py)."""

DEFAULT_OVERLAY_ROOT = Path("~/.cache/ai4va_fg/lmms_eval_tasks")


def tasks_dir() -> Path:
    """The folder to pass to ``lmms-eval --include_path`` for the default ``dataset_path``."""
    return TASKS_DIR


def _is_group(path: Path) -> bool:
    import yaml

    with open(path, encoding="utf-8") as f:
        head = f.read()
    # Group files have a top-level `group:` key; task files a `task:` scalar (no !function tags here).
    data = yaml.safe_load("\n".join(line for line in head.splitlines() if "!function" not in line)) or {}
    return "group" in data


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


def write_overlay(dataset: str, out: str | os.PathLike | None = None) -> Path:
    """Write the task overlay pointing every AI4VA-FG task at ``dataset`` (see the module docstring).

    Args:
        dataset: a built AI4VA-FG folder (made absolute) or a Hub dataset id (``owner/name``).
        out: overlay folder; default ``~/.cache/ai4va_fg/lmms_eval_tasks/<hash of dataset>``.

    Returns:
        The overlay folder, to pass to ``--include_path``.

    Raises:
        ValueError: ``dataset`` looks like a local path that does not exist, or is a file.
    """
    target = _resolve_dataset(dataset)
    if out is None:
        digest = hashlib.sha256(f"{target}|{TASKS_DIR}".encode()).hexdigest()[:16]
        out = DEFAULT_OVERLAY_ROOT.expanduser() / digest
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)
        quoted = target.replace("'", "''")
        for src in sorted(TASKS_DIR.glob("*.yaml")):
            if _is_group(src):
                shutil.copyfile(src, tmp / src.name)
            else:
                (tmp / src.name).write_text(
                    f"# Overlay written by `python -m lmms_eval_tasks.path --dataset`: {src.name} on another dataset.\n"
                    f"include: {src}\n"
                    f"dataset_path: '{quoted}'\n",
                    encoding="utf-8",
                )
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    try:
        print(write_overlay(args.dataset, args.out))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
