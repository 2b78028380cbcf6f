"""Write (or check) the lmms-eval task and group YAMLs of ``lmms_eval_tasks/ai4va_fg`` from the task
declarations (:mod:`ai4va_fg_dataset.tasks.spec`).

One task YAML per (task, prompt mode) and one group YAML per mode; a mode's template
(``_default_template_yaml``, ``_think_yaml``...) holds everything the tasks of that mode share, so a
task file only names itself, its dataset config and its template. The manual-zoom modes cover the tasks
whose spec has ``manual_zoom`` (paper Table 3.3).

.. code-block:: bash

    python -m lmms_eval_tasks.ai4va_fg.generate_yamls            # rewrite the YAMLs in this folder
    python -m lmms_eval_tasks.ai4va_fg.generate_yamls --check    # exit 1 and list the differences
    python -m lmms_eval_tasks.ai4va_fg.generate_yamls --out DIR --tasks toy   # elsewhere, some tasks

With ``--out`` the task files ``include:`` the templates of this folder by absolute path, so ``DIR`` works
as an lmms-eval ``--include_path`` on its own (``tests/test_task_contract.py`` does so for a toy task).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from ai4va_fg_dataset.core.atomic_dir import replacing_file
from ai4va_fg_dataset.tasks.spec import TaskSpec, get_task, iter_tasks

HERE = Path(__file__).resolve().parent
"""The installed task folder (YAMLs, templates, utils.py)."""

PREFIX = "ai4va_fg"


@dataclass(frozen=True)
class Mode:
    """One prompt mode of the lmms-eval tasks.

    Attributes:
        name: ``"direct"``, ``"think"``...; the task / group name suffix is ``_<name>`` (none for direct).
        template: the shared YAML of the mode (in :data:`HERE`).
        task_note: what the mode is, in the task files' comment line.
        group_note: what the group is, in the group file's comment line.
        manual_zoom_only: only tasks whose spec has ``manual_zoom``.
    """

    name: str
    template: str
    task_note: str
    group_note: str
    manual_zoom_only: bool = False

    @property
    def suffix(self) -> str:
        return "" if self.name == "direct" else f"_{self.name}"


MODES: tuple[Mode, ...] = (
    Mode("direct", "_default_template_yaml", "direct mode", "the AI4VA-FG tasks, direct prompt (paper Table 3.2)"),
    Mode("think", "_think_yaml", "think mode", "think prompt"),
    Mode("tool", "_tool_yaml", "tool mode", "agentic zoom (--model ai4va_zoom; paper Table 5.2)"),
    Mode("zoom", "_zoom_yaml", "zoom mode (manual panel zoom, paper Table 3.3)",
         "manual zoom as paper Table 3.3: the crops of the panels that hold the grounding entities", True),
    Mode("zoom_entity", "_zoom_entity_yaml",
         "zoom_entity mode (manual zoom on the grounding entities, not the paper's control)",
         "manual zoom, entity-crop variant: crops of the grounding boxes (not the paper's Table 3.3 control)", True),
)

GROUP_TAIL = """aggregate_metric_list:
  - metric: accuracy
    aggregation: mean
    weight_by_size: false
metadata:
  version: 1.0
"""

_MEAN_SKIP_NONE = "!function utils.ai4va_fg_mean_skip_none"
TOOL_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("tool_calls", "mean", False),
    ("zoom_iou", "!function utils.ai4va_fg_pooled_crop_iou", True),
    ("zoom_iou_first", _MEAN_SKIP_NONE, True),
    ("zoom_iou_second", _MEAN_SKIP_NONE, True),
)
"""Zoom statistics of the tool mode (paper Table 5.2: tool calls per sample, crop IoU)."""


def metrics(spec: TaskSpec, mode: Mode) -> list[tuple[str, str, bool]]:
    """``(metric, aggregation, higher_is_better)`` of a task in a mode: accuracy and parse failures;
    the mean absolute error for numeric answers; judge failures for open answers (LLM judge); the zoom
    statistics in tool mode (:data:`TOOL_METRICS`)."""
    out = [("accuracy", "mean", True)]
    if spec.answer_type == "number":
        out.append(("mae", _MEAN_SKIP_NONE, False))
    out.append(("parse_failure", "mean", False))
    if spec.answer_type == "open":
        out.append(("judge_failure", "mean", False))
    if mode.name == "tool":
        out += TOOL_METRICS
    return out


def task_name(spec: TaskSpec, mode: Mode) -> str:
    """The lmms-eval task name, ``ai4va_fg_<task>[_<mode>]``."""
    return f"{PREFIX}_{spec.name}{mode.suffix}"


def _answer_note(spec: TaskSpec) -> str:
    return {"choice": f"{spec.n_choices} choices", "number": "number: exact match + MAE",
            "open": "open-ended, LLM judge"}[spec.answer_type]


def _modes_of(spec: TaskSpec) -> list[Mode]:
    return [m for m in MODES if spec.manual_zoom or not m.manual_zoom_only]


def render(tasks: Iterable[str] | None = None, *, template_dir: Path | None = None,
           groups: bool = True, dataset_path: str | None = None) -> dict[str, str]:
    """The YAML files of ``tasks`` (default: every registered task): ``{file name: text}``.

    Args:
        tasks: task names; ``None``: all registered, in registration order.
        template_dir: where task files find the mode templates (``include:``); ``None``: next to them
            (a relative include, as in this folder).
        groups: also the group files (one per mode that has a task).
        dataset_path: set in every task file (a built folder or a Hub id); ``None``: the template's.

    Raises:
        KeyError: an unknown task name.
    """
    specs = [get_task(t) for t in tasks] if tasks is not None else list(iter_tasks())
    out: dict[str, str] = {}
    for spec in specs:
        for mode in _modes_of(spec):
            include = mode.template if template_dir is None else str(Path(template_dir) / mode.template)
            text = (
                f"# AI4VA-FG {spec.title} ({_answer_note(spec)}), {mode.task_note}.\n"
                f"task: {task_name(spec, mode)}\n"
                f"dataset_name: {spec.name}\n"
                f"include: {include}\n"
            )
            if dataset_path is not None:
                text += f"dataset_path: '{dataset_path.replace(chr(39), chr(39) * 2)}'\n"
            if mode.name == "zoom_entity" and spec.separate_regions:
                text += "doc_to_visual: !function utils.ai4va_fg_zoom_per_box_doc_to_visual\n"
            if spec.answer_type != "choice":  # the templates' metric_list is the choice tasks'
                text += "metric_list:\n" + "".join(
                    f"  - metric: {m}\n    aggregation: {agg}\n    higher_is_better: {str(hib).lower()}\n"
                    for m, agg, hib in metrics(spec, mode)
                )
            out[f"{task_name(spec, mode)}.yaml"] = text
    if groups:
        for mode in MODES:
            members = [task_name(s, mode) for s in specs if mode in _modes_of(s)]
            if not members:
                continue
            out[f"{PREFIX}{mode.suffix}.yaml"] = (
                f"# Group: {mode.group_note}. Reports the macro average of the task accuracies.\n"
                f"group: {PREFIX}{mode.suffix}\ntask:\n" + "".join(f"  - {m}\n" for m in members) + GROUP_TAIL
            )
    return out


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps lmms-eval's ``!function x`` tags as the string ``"!function x"``."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _content(text: str) -> dict:
    return yaml.load(text, Loader=_Loader) or {}  # a SafeLoader subclass


def check(folder: Path = HERE, tasks: Iterable[str] | None = None) -> list[str]:
    """Differences between the YAMLs in ``folder`` and :func:`render` ``(tasks)`` (content, not comments
    or layout): one line per missing, different or extra ``ai4va_fg*.yaml`` file; ``[]`` when they match."""
    want = render(tasks)
    problems = []
    for name, text in want.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _content(path.read_text(encoding="utf-8")) != _content(text):
            problems.append(f"{name}: differs from the task declarations")
    for path in sorted(folder.glob(f"{PREFIX}*.yaml")):
        if path.name not in want:
            problems.append(f"{path.name}: no task declaration or mode produces it")
    return problems


def write(folder: Path = HERE, tasks: Iterable[str] | None = None, *, template_dir: Path | None = None,
          groups: bool = True, dataset_path: str | None = None) -> list[Path]:
    """Write :func:`render` into ``folder`` (each file atomically); returns the paths written. A file
    whose YAML content already matches is left as it is (its comments kept).

    Raises:
        KeyError: an unknown task name.
        OSError: ``folder`` cannot be written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(tasks, template_dir=template_dir, groups=groups, dataset_path=dataset_path).items():
        old = folder / name
        if old.is_file() and _content(old.read_text(encoding="utf-8")) == _content(text):
            continue
        with replacing_file(folder / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m lmms_eval_tasks.ai4va_fg.generate_yamls [--check] [--out DIR] [--tasks a,b]``."""
    p = argparse.ArgumentParser(prog="python -m lmms_eval_tasks.ai4va_fg.generate_yamls", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    p.add_argument("--out", type=Path, default=None, help="write here (templates included by absolute path)")
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: all registered)")
    p.add_argument("--dataset", default=None, help="dataset_path of the task files (with --out)")
    args = p.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    tasks = args.tasks.split(",") if args.tasks else None
    if args.dataset and not args.out:
        p.error("--dataset needs --out (the installed YAMLs keep the template's dataset_path)")
    try:
        paths = write(args.out or HERE, tasks, template_dir=HERE if args.out else None, dataset_path=args.dataset)
    except KeyError as exc:
        p.error(str(exc.args[0]))
    print(f"wrote {len(paths)} files to {args.out or HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
