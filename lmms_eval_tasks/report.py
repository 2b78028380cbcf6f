"""``ai4va-fg report RESULTS...``: AI4VA-FG tables and a bar chart from lmms-eval result files.

Reads lmms-eval ``*_results.json`` files (or folders holding them, searched recursively), and
writes, atomically, into ``--out`` (default ``.``):

* ``ai4va_fg_results.md``: first the **warnings** a reader needs before comparing rows (``--limit``
  runs, rows evaluated on different datasets, a task given by two files); the accuracy table in the
  layout of the paper's Table 3.2 (method.md section 3): one row per model and prompt mode, one
  column per task (``TaskSpec.short_title`` from :mod:`ai4va_fg_dataset.tasks.spec`: the paper's
  seven always, other registered tasks when a run has them) in percent, a ``random`` baseline row
  first, the paper's reference rows (``paper: <model>``, ``TaskSpec.paper_scores``) last (``--no-paper``
  leaves them out); then, when tool-mode results are present, the zoom statistics in the layout of
  Table 5.2 (tool calls per sample, crop IoU, first and second crop IoU; IoU ``n/a`` for tasks
  without GT boxes), and the MAE (numeric tasks), parse-failure and judge-failure (open tasks) rates;
* ``ai4va_fg_results.csv``: the same numbers, one row per (model, mode, dataset), machine-readable,
  with per task only the metrics it has and its scored / available sample counts;
* ``ai4va_fg_accuracy.png``: grouped bars of accuracy per task (matplotlib), each labelled with its
  value (a 0% bar is a visible line labelled 0, a missing one ``n/a``), the random baseline as a
  dashed tick per task.

A row's label is ``--label`` (one per results file, in order) or the model's ``pretrained`` /
``model`` argument, plus the mode (``think``, ``tool``, ``zoom``) taken from the task names. Files
of the same model and mode on the same dataset (``configs.<task>.dataset_path`` and split) merge (a
later file wins per task, with a warning when both have the task); on different datasets they stay
separate rows tagged ``[D1]``, ``[D2]``, ... A task scored on fewer samples than its split has
(``n-samples``: ``--limit``) is marked ``*`` and warned about. Warnings also go to stderr.

Bad input is refused, never skipped: a results file that is missing, unreadable, not UTF-8, not
JSON, larger than :data:`MAX_RESULTS_BYTES`, or of the wrong shape (``results`` not an object,
``config`` / ``model_args`` of the wrong type, no AI4VA-FG task), or an ``--out`` that cannot be
written, prints one line ``ai4va-fg report: error: <file>: <what is wrong>`` on stderr and exits 2,
with no traceback and no output written. Metric values that are not finite numbers (strings,
booleans, NaN, infinities, integers too large for a float) are shown as ``-``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ai4va_fg_dataset.tasks.spec as task_spec
from ai4va_fg_dataset.core.atomic_dir import replacing_file
from ai4va_fg_dataset.core.tool_calls import loads_bounded
from ai4va_fg_dataset.schema import TASKS


def _spec(task: str) -> task_spec.TaskSpec | None:
    """The task's declaration, ``None`` for a name the registry does not know."""
    try:
        return task_spec.get_task(task)
    except (KeyError, ValueError):
        return None


def short_title(task: str) -> str:
    """The task's column label (``TaskSpec.short_title``: ``"Depth"``), or its name if unregistered."""
    spec = _spec(task)
    return spec.short_title if spec is not None else task


def random_baseline(task: str) -> float | None:
    """Random-guess accuracy (%): ``TaskSpec.chance``, which is the paper's ``random`` row for its tasks
    (50 for Character Identification: two of its four options are ruled out by the marks) and
    100 / options for other choice tasks; ``None`` for open and numeric answers."""
    spec = _spec(task)
    return spec.chance if spec is not None else None


COLUMNS: dict[str, str] = {t: short_title(t) for t in task_spec.task_names()}
"""Short column names of every task registered at import (the paper's seven first, in the order of its
Table 3.2); :func:`table_tasks` picks the columns of one report."""

RANDOM_BASELINE: dict[str, float | None] = {t: random_baseline(t) for t in COLUMNS}
"""Random-guess accuracy (%) per task (:func:`random_baseline`), the first row of paper Table 3.2."""

PAPER_ROWS: tuple[str, ...] = tuple(m for m in task_spec.PAPER_MODELS if m != "random")
"""The paper's reference rows (method.md section 3, accuracy % on the test split), read from each
task's ``TaskSpec.paper_scores``; shown after the runs, labelled ``paper: <model>``."""

PAPER_ZOOM_STATS: dict[str, tuple[float | None, float | None, float | None, float | None]] = {
    "panel_understanding": (1.01, 0.565, None, None),
    "action_recognition": (1.10, 0.862, None, None),
    "depth_comparison": (0.93, 0.847, None, None),
    "character_identification": (1.88, 0.835, 0.842, 0.829),
}
"""The paper's 7B RARL zoom statistics (method.md section 3, thesis Table 5.2): ``(tool calls per sample,
IoU, IoU of the first crop, IoU of the second crop)``; ``None`` where the paper gives none. Kept here
because ``TaskSpec`` holds accuracies only."""


def table_tasks(rows: Sequence[Row]) -> list[str]:
    """The task columns of a report: the paper's seven tasks always (its table layout), then any other
    registered task some row has, in registry order."""
    present = {t for row in rows for t in row.metrics}
    return [t for t in task_spec.task_names() if t in task_spec.PAPER_TASKS or t in present]


def task_metrics(task: str) -> list[tuple[str, float]]:
    """``(metric, scale to the shown unit)`` of the metrics ``task`` has: accuracy and parse failures
    (percent) for every task; ``judge_failure`` (percent) for open answers; ``mae`` for numeric
    answers; ``tool_calls`` for every task (tool mode); the crop IoUs only for tasks with grounding
    boxes (``TaskSpec.grounding``). An unregistered task gets them all."""
    spec = _spec(task)
    metrics = [("accuracy", 100.0), ("parse_failure", 100.0)]
    if spec is None or spec.answer_type == "open":
        metrics.append(("judge_failure", 100.0))
    if spec is None or spec.answer_type == "number":
        metrics.append(("mae", 1.0))
    metrics.append(("tool_calls", 1.0))
    if spec is None or spec.has_grounding:
        metrics += [("zoom_iou", 1.0), ("zoom_iou_first", 1.0), ("zoom_iou_second", 1.0)]
    return metrics

MODES = ("direct", "think", "tool", "zoom", "zoom_entity")
"""Prompt / input modes, from the task-name suffix: ``zoom`` is the manual panel zoom of paper Table 3.3 (group
``ai4va_fg_zoom``), ``zoom_entity`` the crop of the grounding entities (group ``ai4va_fg_zoom_entity``)."""

PAPER_PANEL_ZOOM: dict[str, float] = {s.name: s.paper_manual_zoom for s in task_spec.iter_tasks()
                                      if s.paper_manual_zoom is not None}
"""Paper Table 3.3: Qwen2.5-VL-7B accuracy (%) with the manual panel zoom (GT panel crops), method.md section 3
(``TaskSpec.paper_manual_zoom``)."""
MAX_RESULTS_BYTES = 256 * 1024 * 1024
"""Largest results file read (lmms-eval writes a few kB; samples go to other files)."""
OUTPUT_NAMES = ("ai4va_fg_results.md", "ai4va_fg_results.csv", "ai4va_fg_accuracy.png")


class ReportError(ValueError):
    """A results file that cannot be used (the message names it)."""


@dataclass
class Row:
    """One (model, mode, dataset) row: metrics per task, in the units lmms-eval reports (fractions).

    Attributes:
        dataset: the dataset the row's results files were evaluated on (``configs.<task>.dataset_path``
            and split of the results file; ``""`` when the file does not say).
        samples: per task ``(scored samples, samples in the split)`` from the file's ``n-samples``;
            fewer scored than available means a ``--limit`` run.
        limit: the ``--limit`` of the run (``config.limit``), ``None`` when not limited.
        dataset_tag: ``" [D2]"`` when the report mixes datasets (set by :func:`tag_datasets`), else ``""``.
        notes: what loading had to decide (a task given by two files: the later one is shown).
    """

    model: str
    mode: str
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    dataset: str = ""
    samples: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    limit: float | None = None
    dataset_tag: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        base = self.model if self.mode == "direct" else f"{self.model} ({self.mode})"
        return base + self.dataset_tag

    def limited(self, task: str) -> bool:
        """The task was scored on fewer samples than its split has (``--limit``)."""
        done, total = self.samples.get(task, (None, None))
        if done is not None and total is not None:
            return done < total
        return self.limit is not None and task in self.metrics

    def value(self, task: str, metric: str) -> float | None:
        """The metric as a finite float, ``None`` when absent or not a finite number."""
        return _finite(self.metrics.get(task, {}).get(metric))


def _finite(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def parse_task_name(name: str) -> tuple[str, str] | None:
    """``ai4va_fg_<task>[_think|_tool|_zoom|_zoom_entity]`` -> ``(task, mode)``; ``None`` for other tasks."""
    if not name.startswith("ai4va_fg_"):
        return None
    rest = name[len("ai4va_fg_"):]
    for mode in ("think", "tool", "zoom", "zoom_entity"):
        if rest.endswith("_" + mode) and rest[: -len(mode) - 1] in TASKS:
            return rest[: -len(mode) - 1], mode
    return (rest, "direct") if rest in TASKS else None


def model_label(results: dict) -> str:
    """The model's name in a results file: ``pretrained=`` / ``model=`` / ``model_version=`` or the model.

    Raises:
        ReportError: ``config`` is not an object, or ``model_args`` is neither a ``k=v,...`` string
            nor an object.
    """
    config = results.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ReportError(f"'config' is a {type(config).__name__}, not an object")
    args = config.get("model_args") or ""
    if isinstance(args, str):
        pairs = dict(p.split("=", 1) for p in args.split(",") if "=" in p)
    elif isinstance(args, dict):
        pairs = args
    else:
        raise ReportError(f"'config.model_args' is a {type(args).__name__}, not a string or an object")
    for key in ("pretrained", "model", "model_version"):
        if pairs.get(key):
            value = str(pairs[key]).rstrip("/")
            return value.split("/")[-1] if os.path.sep in value and os.path.isabs(value) else value
    return str(results.get("model_name") or config.get("model") or "model")[:200]


def find_result_files(paths: Sequence[str]) -> list[Path]:
    """Expand folders to the ``*_results.json`` files under them (sorted); files are kept as given.

    Raises:
        ReportError: a path that does not exist, or a folder without results files.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*_results.json")) or sorted(p.rglob("results*.json"))
            if not found:
                raise ReportError(f"{p}: no lmms-eval *_results.json file in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ReportError(f"{p}: no such file or folder")
    return files


def load_rows(files: Sequence[Path], labels: Sequence[str] | None = None) -> list[Row]:
    """Read results files into rows (see the module docstring).

    Raises:
        ReportError: a file that is unreadable, not UTF-8, not JSON (or too large / too deeply
            nested), without a ``results`` object, with a ``config`` of the wrong type, or without an
            AI4VA-FG task; or a ``labels`` list whose length differs from ``files``. The message
            starts with the file's path.
    """
    if labels and len(labels) != len(files):
        raise ReportError(f"{len(labels)} --label value(s) for {len(files)} results file(s)")
    rows: dict[tuple[str, str, str], Row] = {}
    given_by: dict[tuple[str, str, str, str], Path] = {}
    for i, path in enumerate(files):
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise ReportError(f"{path}: not an lmms-eval results file (no 'results' object)")
        try:
            model = labels[i] if labels else model_label(data)
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from exc
        ours = {name: parsed for name, metrics in data["results"].items()
                if (parsed := parse_task_name(name)) is not None and isinstance(metrics, dict)}
        if not ours:
            raise ReportError(f"{path}: no AI4VA-FG task (ai4va_fg_*) in its results")
        dataset = _file_dataset(data, ours)
        config = data.get("config")
        limit = _finite(config.get("limit")) if isinstance(config, dict) else None
        counts = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
        for task_name, (task, mode) in ours.items():
            key = (model, mode, dataset)
            row = rows.setdefault(key, Row(model, mode, dataset=dataset))
            if (*key, task) in given_by:
                row.notes.append(f"{short_title(task)} is in two results files ({given_by[(*key, task)]} and {path}); "
                                 "the later one is shown")
            given_by[(*key, task)] = path
            row.metrics[task] = {
                k.split(",", 1)[0]: value
                for k, value in data["results"][task_name].items()
                if "," in k and "_stderr" not in k and isinstance(value, (int, float))
            }
            n = counts.get(task_name) if isinstance(counts.get(task_name), dict) else {}
            row.samples[task] = (_count(n.get("effective")), _count(n.get("original")))
            if limit is not None:
                row.limit = limit
    ordered = sorted(rows.values(), key=lambda r: (MODES.index(r.mode), r.model, r.dataset))
    tag_datasets(ordered)
    return ordered


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _file_dataset(data: dict, tasks: dict[str, tuple[str, str]]) -> str:
    """The dataset a results file was evaluated on: the ``dataset_path`` (and split) of its AI4VA-FG
    tasks' ``configs``, ``""`` when it does not say; several are joined with ``"; "``."""
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    found = set()
    for name in tasks:
        config = configs.get(name)
        if not isinstance(config, dict) or not isinstance(config.get("dataset_path"), str):
            continue
        split = config.get("test_split")
        found.add(config["dataset_path"] + (f" ({split})" if isinstance(split, str) and split else ""))
    return "; ".join(sorted(found))[:500]


def tag_datasets(rows: Sequence[Row]) -> list[str]:
    """Give each row a ``" [D1]"``, ``" [D2]"``... label suffix when the rows were evaluated on more than
    one dataset (rows whose files do not say get none); returns the distinct datasets in tag order."""
    datasets = sorted({r.dataset for r in rows if r.dataset})
    for row in rows:
        row.dataset_tag = f" [D{datasets.index(row.dataset) + 1}]" if len(datasets) > 1 and row.dataset else ""
    return datasets


def report_warnings(rows: Sequence[Row]) -> list[str]:
    """What a reader must know before comparing the rows: ``--limit`` runs (scored on part of the split),
    rows evaluated on different datasets, and tasks given by two files of one row."""
    warnings = []
    datasets = sorted({r.dataset for r in rows if r.dataset})
    if len(datasets) > 1:
        names = ", ".join(f"[D{i}] {d}" for i, d in enumerate(datasets, 1))
        warnings.append(f"the rows were evaluated on {len(datasets)} different datasets ({names}); "
                        "compare rows of one dataset only")
    for row in rows:
        limited = [t for t in row.metrics if row.limited(t)]
        if limited:
            parts = []
            for t in limited:
                done, total = row.samples.get(t, (None, None))
                parts.append(f"{short_title(t)} {done}/{total}" if done is not None and total is not None
                             else short_title(t))
            limit = f" --limit {row.limit:g}" if row.limit is not None else " --limit"
            warnings.append(f"{row.label}: a{limit} run, scored on part of the split ({', '.join(parts)} samples); "
                            "its numbers (marked *) are not comparable with full runs or the paper")
        warnings += [f"{row.label}: {note}" for note in row.notes]
    return warnings


def _read_json(path: Path) -> object:
    """The JSON value in ``path``; any problem is a one-line :class:`ReportError` naming the file."""
    try:
        if path.stat().st_size > MAX_RESULTS_BYTES:
            raise ReportError(f"{path}: larger than {MAX_RESULTS_BYTES} bytes, not an lmms-eval results file")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text (byte {exc.start}); not an lmms-eval results file") from exc
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    ok, data = loads_bounded(text, max_chars=len(text), max_depth=64)
    if not ok:
        raise ReportError(f"{path}: not a readable JSON file ({data})")
    return data


def _fmt(value: float | None, scale: float = 100.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def accuracy_table(rows: Sequence[Row], paper: bool = False) -> list[list[str]]:
    """Header + random row + one row per (model, mode[, dataset]): accuracy in percent, ``-`` where
    absent, ``*`` after a number scored on part of the split (``--limit``); with ``paper``, then the
    paper's reference rows (:data:`PAPER_ROWS`, ``paper: <model>``, from ``TaskSpec.paper_scores``).
    Columns: :func:`table_tasks`."""
    tasks = table_tasks(rows)
    table = [["model"] + [short_title(t) for t in tasks]]
    table.append(["random"] + [_fmt(random_baseline(t), 1.0) for t in tasks])
    for row in rows:
        table.append([row.label] + [_fmt(row.value(t, "accuracy")) + ("*" if row.value(t, "accuracy") is not None
                                                                       and row.limited(t) else "")
                                    for t in tasks])
    if paper:
        for model in PAPER_ROWS:
            table.append([f"paper: {model}"] + [_fmt(_paper_score(t, model), 1.0) for t in tasks])
    return table


def _paper_score(task: str, model: str) -> float | None:
    spec = _spec(task)
    return spec.paper_score(model) if spec is not None and task in task_spec.PAPER_TASKS else None


def manual_zoom_table(rows: Sequence[Row]) -> list[list[str]]:
    """Header + the paper's Table 3.3 row (:data:`PAPER_PANEL_ZOOM`) + one row per ``zoom`` (labelled "panel
    zoom") and ``zoom_entity`` ("entity zoom") result: accuracy (%) of the four tasks with grounding boxes."""
    tasks = list(PAPER_PANEL_ZOOM)
    table = [["model"] + [COLUMNS[t] for t in tasks],
             ["paper Table 3.3: Qwen2.5-VL-7B (panel zoom)"] + [f"{PAPER_PANEL_ZOOM[t]:.2f}" for t in tasks]]
    for row in rows:
        if row.mode in ("zoom", "zoom_entity"):
            kind = "panel zoom" if row.mode == "zoom" else "entity zoom"
            table.append([f"{row.model} ({kind})"] + [_fmt(row.value(t, "accuracy")) for t in tasks])
    return table


def zoom_table(rows: Sequence[Row], paper: bool = False) -> list[list[str]]:
    """Paper Table 5.2 layout for tool-mode rows: tool calls / IoU / first / second crop IoU per task.

    A task without grounding boxes (the reorderings) has no crop IoU: its IoU cells read ``n/a``.
    With ``paper`` (and at least one tool-mode row), the paper's 7B RARL statistics
    (:data:`PAPER_ZOOM_STATS`) follow as ``paper: 7B RARL`` rows."""
    table = [["model", "task", "tool calls", "IoU", "IoU 1st crop", "IoU 2nd crop"]]
    for row in rows:
        if row.mode != "tool":
            continue
        for task in table_tasks(rows):
            if task not in row.metrics:
                continue
            ious = [m for m, _ in task_metrics(task) if m.startswith("zoom_iou")]
            cells = [_fmt(row.value(task, m), 1.0, 3) for m in ious] if ious else ["n/a"] * 3
            table.append([row.model + row.dataset_tag, short_title(task), _fmt(row.value(task, "tool_calls"), 1.0),
                          *cells])
    if paper and len(table) > 1:
        for task, stats in PAPER_ZOOM_STATS.items():
            table.append(["paper: 7B RARL", short_title(task), _fmt(stats[0], 1.0),
                          *[_fmt(v, 1.0, 3) for v in stats[1:]]])
    return table


def _markdown(table: list[list[str]]) -> str:
    head, *body = table
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def render_markdown(rows: Sequence[Row], paper: bool = True) -> str:
    """The markdown report: warnings (:func:`report_warnings`) first, the accuracy table (with the
    paper's reference rows unless ``paper`` is false), then manual zoom, zoom statistics, counting MAE
    and failure rates where the tasks have them."""
    parts = ["# AI4VA-FG results\n"]
    warnings = report_warnings(rows)
    if warnings:
        parts += ["## Warnings\n", "".join(f"- {w}\n" for w in warnings)]
    datasets = tag_datasets(rows)
    if len(datasets) == 1:
        parts.append(f"Dataset: `{datasets[0]}`.\n")
    parts += [("Accuracy (%) on the test split, layout of the paper's Table 3.2; Panel Understanding is judged "
               "by an LLM." + (" Rows `paper: ...` are the paper's published numbers (method.md section 3), "
                               "not results of this run." if paper else "") + "\n"),
              _markdown(accuracy_table(rows, paper=paper))]
    manual = manual_zoom_table(rows)
    if len(manual) > 2:
        parts += ["\n## Manual zoom (paper Table 3.3)\n",
                  ("Accuracy (%) when the model sees crops instead of the page. panel zoom (`ai4va_fg_zoom`): one "
                   "crop per panel holding the grounding entities, the paper's control, its Qwen2.5-VL-7B numbers "
                   "first; entity zoom (`ai4va_fg_zoom_entity`): crops of the grounding boxes themselves.\n"),
                  _markdown(manual)]
    zoom = zoom_table(rows, paper=paper)
    if len(zoom) > 1:
        parts += ["\n## Zoom statistics (tool mode, paper Table 5.2)\n",
                  ("Average tool calls per sample and IoU of the executed crops with the GT regions "
                  "(Hungarian-matched; first and second crop separately); n/a: the task has no GT boxes.\n"),
                  _markdown(zoom)]
    tasks = table_tasks(rows)
    numeric = [t for t in tasks if ("mae", 1.0) in task_metrics(t)]
    judged = [t for t in tasks if ("judge_failure", 100.0) in task_metrics(t)]
    extra = [["model"] + [f"{short_title(t)} MAE" for t in numeric] + [f"parse fail {short_title(t)}" for t in tasks]
             + [f"judge fail {short_title(t)}" for t in judged]]
    for row in rows:
        extra.append([row.label] + [_fmt(row.value(t, "mae"), 1.0) for t in numeric]
                     + [_fmt(row.value(t, "parse_failure")) for t in tasks]
                     + [_fmt(row.value(t, "judge_failure")) for t in judged])
    parts += ["\n## Counting error and failures\n",
              ("Mean absolute error of the parsed counts (numeric tasks); share (%) of answers that could not be "
               "read; share (%) of open answers the LLM judge gave no verdict on (scored 0).\n"),
              _markdown(extra)]
    return "\n".join(parts)


def render_csv(rows: Sequence[Row], paper: bool = True) -> str:
    """One CSV row per (model, mode, dataset): per task the metrics it has (:func:`task_metrics`:
    accuracy and failure rates in %, MAE, zoom statistics) and ``samples`` / ``samples_total`` (scored
    vs available: fewer is a ``--limit`` run); ``dataset`` names the evaluated data. Then, with
    ``paper``, the paper's reference rows (mode ``paper``, accuracy only)."""
    tasks = table_tasks(rows)
    header = ["model", "mode", "dataset"]
    for task in tasks:
        header += [f"{task}/{m}" for m, _ in task_metrics(task)] + [f"{task}/samples", f"{task}/samples_total"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)

    def accuracy_only(label: str, mode: str, score) -> list[str]:
        cells = [label, mode, ""]
        for t in tasks:
            v = score(t)
            cells += [(f"{v:.2f}" if m == "accuracy" and v is not None else "") for m, _ in task_metrics(t)] + ["", ""]
        return cells

    writer.writerow(accuracy_only("random", "direct", random_baseline))
    for row in rows:
        cells = [row.model, row.mode, row.dataset]
        for task in tasks:
            for metric, scale in task_metrics(task):
                v = row.value(task, metric)
                cells.append("" if v is None else f"{v * scale:.4f}")
            done, total = row.samples.get(task, (None, None))
            cells += ["" if done is None else str(done), "" if total is None else str(total)]
        writer.writerow(cells)
    if paper:
        for model in PAPER_ROWS:
            writer.writerow(accuracy_only(model, "paper", lambda t, m=model: _paper_score(t, m)))
    return buf.getvalue()


def render_chart(rows: Sequence[Row], path: Path) -> None:
    """Grouped bar chart of accuracy (%) per task, random baseline dashed; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = chart_figure(rows)
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def chart_figure(rows: Sequence[Row]):
    """The matplotlib figure of :func:`render_chart`: one bar per (row, task) with its value written
    above it, so a 0% bar shows as a thick line at 0 labelled ``0`` (not as a gap); a task a row has
    no accuracy for gets no bar and an ``n/a`` label; ``*`` marks a ``--limit`` number; the random
    baseline is a dashed tick per task. The y axis starts a little below 0 to keep 0-bars visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = table_tasks(rows)
    n = max(1, len(rows))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(tasks) + 0.4 * n), 4.5))
    for i, row in enumerate(rows):
        xs = [k - 0.4 + width * (i + 0.5) for k in range(len(tasks))]
        values = [row.value(t, "accuracy") for t in tasks]
        color = f"C{i % 10}"
        drawn = [(x, v * 100) for x, v in zip(xs, values) if v is not None]
        ax.bar([x for x, _ in drawn], [y for _, y in drawn], width=width, color=color, edgecolor=color,
               linewidth=1.5, label=row.label.replace("$", r"\$"))  # a "$" would start mathtext
        for x, v, t in zip(xs, values, tasks):
            text = "n/a" if v is None else f"{v * 100:.0f}" + ("*" if row.limited(t) else "")
            ax.text(x, (v or 0.0) * 100 + 1.0, text, ha="center", va="bottom", fontsize=6,
                    color="grey" if v is None else "black")
    first = True
    for k, task in enumerate(tasks):
        base = random_baseline(task)
        if base is not None:
            ax.hlines(base, k - 0.45, k + 0.45, colors="black", linestyles="dashed", linewidth=1,
                      label="random" if first else None)
            first = False
    ax.set_xticks(range(len(tasks)), [short_title(t) for t in tasks])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 105)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("AI4VA-FG accuracy per task")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _atomic_write(path: Path, write) -> None:
    with replacing_file(path) as tmp:
        write(tmp)


def write_report(rows: Sequence[Row], out_dir: str | os.PathLike, paper: bool = True) -> list[Path]:
    """Write the markdown, CSV (with the paper's reference rows unless ``paper`` is false) and PNG,
    each atomically, into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, csv_path, png = (out / name for name in OUTPUT_NAMES)
    _atomic_write(md, lambda p: p.write_text(render_markdown(rows, paper=paper), encoding="utf-8"))
    _atomic_write(csv_path, lambda p: p.write_text(render_csv(rows, paper=paper), encoding="utf-8"))
    _atomic_write(png, lambda p: render_chart(rows, p))
    return [md, csv_path, png]


def main(argv: Sequence[str] | None = None) -> int:
    """``ai4va-fg report RESULTS... [--out DIR] [--label NAME ...]``; exit 0, or 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="ai4va-fg report",
        description="AI4VA-FG result tables (markdown, CSV) and a bar chart from lmms-eval results files.",
    )
    parser.add_argument("results", nargs="+", help="lmms-eval *_results.json files or folders holding them")
    parser.add_argument("--out", default=".", help="output folder (default: current folder)")
    parser.add_argument("--label", action="append", default=None,
                        help="row label for each results file, in order (repeat; default: the model name)")
    parser.add_argument("--no-paper", dest="paper", action="store_false",
                        help="leave out the paper's reference rows (method.md section 3)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        files = find_result_files(args.results)
        rows = load_rows(files, args.label)
    except ReportError as exc:
        print(f"ai4va-fg report: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        paths = write_report(rows, args.out, paper=args.paper)
    except OSError as exc:
        where = exc.filename or args.out
        print(f"ai4va-fg report: error: {where}: cannot write the report ({exc.strerror or type(exc).__name__})",
              file=sys.stderr)
        return 2
    print(render_markdown(rows, paper=args.paper))
    for warning in report_warnings(rows):
        print(f"ai4va-fg report: warning: {_one_line(warning)}", file=sys.stderr)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]


if __name__ == "__main__":
    raise SystemExit(main())
