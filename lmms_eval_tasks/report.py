"""``ai4va-fg report RESULTS...``: AI4VA-FG tables and a bar chart from lmms-eval result files.

Reads lmms-eval ``*_results.json`` files (or folders holding them, searched recursively), and
writes, atomically, into ``--out`` (default ``.``):

* ``ai4va_fg_results.md``: the accuracy table in the layout of the paper's Table 3.2 (method.md
  section 3): one row per model and prompt mode, columns PanelU / Action / Depth / DialogR / PanelR /
  CharID / CharCount in percent, a ``random`` baseline row first; then, when tool-mode results are
  present, the zoom statistics in the layout of Table 5.2 (tool calls per sample, crop IoU, first and
  second crop IoU), and the Character Counting MAE and parse-failure rates;
* ``ai4va_fg_results.csv``: the same numbers, one row per (model, mode), machine-readable;
* ``ai4va_fg_accuracy.png``: grouped bars of accuracy per task (matplotlib), the random baseline as
  a dashed tick per task.

A row's label is ``--label`` (one per results file, in order) or the model's ``pretrained`` /
``model`` argument, plus the mode (``think``, ``tool``, ``zoom``) taken from the task names. Several
files of the same model and mode merge (a later file wins per task).

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

from ai4va_fg_dataset.core.atomic_dir import replacing_file
from ai4va_fg_dataset.schema import TASKS
from ai4va_fg_dataset.core.tool_calls import loads_bounded

COLUMNS: dict[str, str] = {
    "panel_understanding": "PanelU",
    "action_recognition": "Action",
    "depth_comparison": "Depth",
    "dialog_reordering": "DialogR",
    "panel_reordering": "PanelR",
    "character_identification": "CharID",
    "character_counting": "CharCount",
}
"""Short column names of paper Table 3.2, in its order."""

RANDOM_BASELINE: dict[str, float | None] = {
    "panel_understanding": None,
    "action_recognition": 25.0,  # 4 options
    "depth_comparison": 50.0,  # 2 options
    "dialog_reordering": 50.0,  # 2 options
    "panel_reordering": 50.0,  # 2 options
    "character_identification": 50.0,  # same / different character (paper reports 50)
    "character_counting": None,
}
"""Random-guess accuracy (%) per task, as in the first row of paper Table 3.2 (method.md section 3)."""

MODES = ("direct", "think", "tool", "zoom")
MAX_RESULTS_BYTES = 256 * 1024 * 1024
"""Largest results file read (lmms-eval writes a few kB; samples go to other files)."""
OUTPUT_NAMES = ("ai4va_fg_results.md", "ai4va_fg_results.csv", "ai4va_fg_accuracy.png")


class ReportError(ValueError):
    """A results file that cannot be used (the message names it)."""


@dataclass
class Row:
    """One (model, mode) row: metrics per task, in the units lmms-eval reports (fractions)."""

    model: str
    mode: str
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.model if self.mode == "direct" else f"{self.model} ({self.mode})"

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
    """``ai4va_fg_<task>[_think|_tool|_zoom]`` -> ``(task, mode)``; ``None`` for other tasks."""
    if not name.startswith("ai4va_fg_"):
        return None
    rest = name[len("ai4va_fg_"):]
    for mode in ("think", "tool", "zoom"):
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
    rows: dict[tuple[str, str], Row] = {}
    for i, path in enumerate(files):
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise ReportError(f"{path}: not an lmms-eval results file (no 'results' object)")
        try:
            model = labels[i] if labels else model_label(data)
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from exc
        n_tasks = 0
        for task_name, metrics in data["results"].items():
            parsed = parse_task_name(task_name)
            if parsed is None or not isinstance(metrics, dict):
                continue
            task, mode = parsed
            n_tasks += 1
            row = rows.setdefault((model, mode), Row(model, mode))
            row.metrics[task] = {
                key.split(",", 1)[0]: value
                for key, value in metrics.items()
                if "," in key and "_stderr" not in key and isinstance(value, (int, float))
            }
        if not n_tasks:
            raise ReportError(f"{path}: no AI4VA-FG task (ai4va_fg_*) in its results")
    return sorted(rows.values(), key=lambda r: (MODES.index(r.mode), r.model))


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


def accuracy_table(rows: Sequence[Row]) -> list[list[str]]:
    """Header + random row + one row per (model, mode): accuracy in percent, ``-`` where absent."""
    table = [["model"] + list(COLUMNS.values())]
    table.append(["random"] + [_fmt(RANDOM_BASELINE[t], 1.0) for t in COLUMNS])
    for row in rows:
        table.append([row.label] + [_fmt(row.value(t, "accuracy")) for t in COLUMNS])
    return table


def zoom_table(rows: Sequence[Row]) -> list[list[str]]:
    """Paper Table 5.2 layout for tool-mode rows: tool calls / IoU / first / second crop IoU per task."""
    table = [["model", "task", "tool calls", "IoU", "IoU 1st crop", "IoU 2nd crop"]]
    for row in rows:
        if row.mode != "tool":
            continue
        for task, short in COLUMNS.items():
            if task not in row.metrics:
                continue
            table.append([row.model, short, _fmt(row.value(task, "tool_calls"), 1.0),
                          _fmt(row.value(task, "zoom_iou"), 1.0, 3), _fmt(row.value(task, "zoom_iou_first"), 1.0, 3),
                          _fmt(row.value(task, "zoom_iou_second"), 1.0, 3)])
    return table


def _markdown(table: list[list[str]]) -> str:
    head, *body = table
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def render_markdown(rows: Sequence[Row]) -> str:
    """The markdown report (accuracy table, then zoom statistics and counting MAE when present)."""
    parts = ["# AI4VA-FG results\n", ("Accuracy (%) on the test split, layout of the paper's Table 3.2; "
             "Panel Understanding is judged by an LLM.\n"), _markdown(accuracy_table(rows))]
    zoom = zoom_table(rows)
    if len(zoom) > 1:
        parts += ["\n## Zoom statistics (tool mode, paper Table 5.2)\n",
                  ("Average tool calls per sample and IoU of the executed crops with the GT regions "
                  "(Hungarian-matched; first and second crop separately).\n"), _markdown(zoom)]
    extra = [["model", "CharCount MAE"] + [f"parse fail {c}" for c in COLUMNS.values()]]
    for row in rows:
        extra.append([row.label, _fmt(row.value("character_counting", "mae"), 1.0)]
                     + [_fmt(row.value(t, "parse_failure")) for t in COLUMNS])
    parts += ["\n## Counting error and parse failures\n",
              "Mean absolute error of the parsed counts; share (%) of answers that could not be read.\n",
              _markdown(extra)]
    return "\n".join(parts)


def render_csv(rows: Sequence[Row]) -> str:
    """One CSV row per (model, mode): accuracy (%), MAE, parse failures (%), zoom statistics per task."""
    header = ["model", "mode"]
    metrics = [("accuracy", 100.0), ("parse_failure", 100.0), ("tool_calls", 1.0), ("zoom_iou", 1.0),
               ("zoom_iou_first", 1.0), ("zoom_iou_second", 1.0), ("judge_failure", 100.0), ("mae", 1.0)]
    for task in COLUMNS:
        header += [f"{task}/{m}" for m, _ in metrics]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(["random", "direct"] + [
        (f"{RANDOM_BASELINE[t]:.2f}" if m == "accuracy" and RANDOM_BASELINE[t] is not None else "")
        for t in COLUMNS for m, _ in metrics])
    for row in rows:
        cells = [row.model, row.mode]
        for task in COLUMNS:
            for metric, scale in metrics:
                v = row.value(task, metric)
                cells.append("" if v is None else f"{v * scale:.4f}")
        writer.writerow(cells)
    return buf.getvalue()


def render_chart(rows: Sequence[Row], path: Path) -> None:
    """Grouped bar chart of accuracy (%) per task, random baseline dashed; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(COLUMNS)
    n = max(1, len(rows))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(tasks) + 0.4 * n), 4.5))
    for i, row in enumerate(rows):
        xs = [k - 0.4 + width * (i + 0.5) for k in range(len(tasks))]
        ys = [(row.value(t, "accuracy") or 0.0) * 100 for t in tasks]
        ax.bar(xs, ys, width=width, label=row.label.replace("$", r"\$"))  # a "$" would start mathtext
    for k, task in enumerate(tasks):
        base = RANDOM_BASELINE[task]
        if base is not None:
            ax.hlines(base, k - 0.45, k + 0.45, colors="black", linestyles="dashed", linewidth=1,
                      label="random" if k == 1 else None)
    ax.set_xticks(range(len(tasks)), [COLUMNS[t] for t in tasks])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("AI4VA-FG accuracy per task")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def _atomic_write(path: Path, write) -> None:
    with replacing_file(path) as tmp:
        write(tmp)


def write_report(rows: Sequence[Row], out_dir: str | os.PathLike) -> list[Path]:
    """Write the markdown, CSV and PNG (each atomically) into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, csv_path, png = (out / name for name in OUTPUT_NAMES)
    _atomic_write(md, lambda p: p.write_text(render_markdown(rows), encoding="utf-8"))
    _atomic_write(csv_path, lambda p: p.write_text(render_csv(rows), encoding="utf-8"))
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
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        files = find_result_files(args.results)
        rows = load_rows(files, args.label)
    except ReportError as exc:
        print(f"ai4va-fg report: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        paths = write_report(rows, args.out)
    except OSError as exc:
        where = exc.filename or args.out
        print(f"ai4va-fg report: error: {where}: cannot write the report ({exc.strerror or type(exc).__name__})",
              file=sys.stderr)
        return 2
    print(render_markdown(rows))
    for p in paths:
        print(f"wrote {p}")
    return 0


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]


if __name__ == "__main__":
    raise SystemExit(main())
