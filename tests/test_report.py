"""`ai4va-fg report` as a researcher reads it (issue 10, part 5): the paper's reference rows from the
task contract, --limit runs and runs on different datasets flagged instead of merged silently,
metrics a task does not have hidden, 0% bars visible, and sample logs that carry the row id."""

from __future__ import annotations

import csv
import io
import json

from ai4va_fg_dataset.tasks.spec import get_task
from lmms_eval_tasks import report
from lmms_eval_tasks.ai4va_fg import utils as task_utils


def _write(path, model, tasks, dataset="/data/build_a", limit=None, n=None):
    """An lmms-eval 0.7.3 results file: ``tasks`` = {task name: {metric: value}}; ``n`` = (effective, original)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "results": {name: {"alias": name, **{f"{k},none": v for k, v in m.items()}, "id,none": [],
                           "accuracy_stderr,none": 0.1} for name, m in tasks.items()},
        "configs": {name: {"task": name, "dataset_path": dataset, "test_split": "test"} for name in tasks},
        "config": {"model": "qwen2_5_vl", "model_args": f"pretrained={model}", "limit": limit},
    }
    if n is not None:
        data["n-samples"] = {name: {"original": n[1], "effective": n[0]} for name in tasks}
    path.write_text(json.dumps(data))
    return path


def test_paper_reference_rows_come_from_the_task_contract(tmp_path):
    res = _write(tmp_path / "a_results.json", "m", {"ai4va_fg_action_recognition": {"accuracy": 0.5}})
    rows = report.load_rows([res])
    table = report.accuracy_table(rows, paper=True)
    labels = [r[0] for r in table]
    assert labels[:3] == ["model", "random", "m"]
    assert labels[3:] == [f"paper: {m}" for m in report.PAPER_ROWS] and len(report.PAPER_ROWS) == 10
    rarl = table[labels.index("paper: 7B RARL")]
    spec = get_task("action_recognition")
    assert rarl[2] == f"{spec.paper_score('7B RARL'):.2f}" == "76.19"
    assert rarl[4] == rarl[5] == "-"  # the paper has no RARL reordering numbers
    assert report.accuracy_table(rows)[3:] == []  # paper=False: runs only
    md = report.render_markdown(rows)
    assert "| paper: Qwen2.5-VL-7B | 41.33 | 43.54 |" in md and "not results of this run" in md
    assert "paper: Qwen2.5-VL-7B" not in report.render_markdown(rows, paper=False)
    paper_csv = [r for r in csv.DictReader(io.StringIO(report.render_csv(rows))) if r["mode"] == "paper"]
    assert {r["model"] for r in paper_csv} == set(report.PAPER_ROWS)
    assert next(r for r in paper_csv if r["model"] == "GPT-4o")["dialog_reordering/accuracy"] == "76.80"


def test_limit_runs_are_flagged(tmp_path, capsys):
    full = _write(tmp_path / "full" / "x_results.json", "m1", {"ai4va_fg_depth_comparison": {"accuracy": 0.6}},
                  n=(120, 120))
    part = _write(tmp_path / "part" / "x_results.json", "m2", {"ai4va_fg_depth_comparison": {"accuracy": 0.0}},
                  limit=20, n=(20, 120))
    rows = report.load_rows([full, part])
    assert [r.limited("depth_comparison") for r in rows] == [False, True]
    table = report.accuracy_table(rows)
    assert table[2][3] == "60.00" and table[3][3] == "0.00*"
    (warning,) = report.report_warnings(rows)
    assert "m2" in warning and "--limit 20" in warning and "Depth 20/120" in warning
    out = tmp_path / "out"
    assert report.main([str(full), str(part), "--out", str(out)]) == 0
    assert "## Warnings" in (out / "ai4va_fg_results.md").read_text()
    assert "ai4va-fg report: warning: m2" in capsys.readouterr().err
    rows_csv = list(csv.DictReader(io.StringIO((out / "ai4va_fg_results.csv").read_text())))
    assert [(r["depth_comparison/samples"], r["depth_comparison/samples_total"]) for r in rows_csv[1:3]] == [
        ("120", "120"), ("20", "120")]


def test_runs_on_different_datasets_are_not_merged(tmp_path):
    task = {"ai4va_fg_action_recognition": {"accuracy": 0.5}}
    a = _write(tmp_path / "a_results.json", "m", task, dataset="/data/build_a")
    b = _write(tmp_path / "b_results.json", "m", {"ai4va_fg_action_recognition": {"accuracy": 0.7}},
               dataset="/data/build_b")
    rows = report.load_rows([a, b])
    assert [r.label for r in rows] == ["m [D1]", "m [D2]"]  # before: one row, the later file silently won
    assert [r.value("action_recognition", "accuracy") for r in rows] == [0.5, 0.7]
    (warning,) = report.report_warnings(rows)
    assert "2 different datasets" in warning and "[D1] /data/build_a (test)" in warning
    # the same dataset twice: one row, and the overlap is said, not hidden
    again = _write(tmp_path / "c_results.json", "m", task, dataset="/data/build_a")
    rows = report.load_rows([a, again])
    assert [r.label for r in rows] == ["m"]
    assert "in two results files" in report.report_warnings(rows)[0]
    assert "Dataset: `/data/build_a (test)`" in report.render_markdown(rows)


def test_metrics_a_task_does_not_have_are_hidden(tmp_path):
    res = _write(tmp_path / "t_results.json", "m", {
        "ai4va_fg_dialog_reordering_tool": {"accuracy": 0.5, "tool_calls": 0.4, "zoom_iou": 0.0},
        "ai4va_fg_character_counting_tool": {"accuracy": 0.1, "mae": 2.0, "tool_calls": 3.0, "zoom_iou": 0.4},
    })
    rows = report.load_rows([res])
    header = report.render_csv(rows).splitlines()[0].split(",")
    assert "character_counting/mae" in header and "dialog_reordering/mae" not in header
    assert "panel_understanding/judge_failure" in header and "action_recognition/judge_failure" not in header
    assert "dialog_reordering/tool_calls" in header and "dialog_reordering/zoom_iou" not in header
    zoom = report.zoom_table(rows)
    assert ["m", "DialogR", "0.40", "n/a", "n/a", "n/a"] in zoom  # no GT boxes: no IoU, not "0.000"
    assert ["m", "CharCount", "3.00", "0.400", "-", "-"] in zoom
    md = report.render_markdown(rows)
    assert "CharCount MAE" in md and "DialogR MAE" not in md and "judge fail PanelU" in md
    assert "judge fail Action" not in md


def test_zero_percent_bars_are_visible_and_missing_ones_are_not_drawn(tmp_path):
    res = _write(tmp_path / "z_results.json", "m", {"ai4va_fg_character_counting": {"accuracy": 0.0},
                                                    "ai4va_fg_action_recognition": {"accuracy": 0.25}})
    rows = report.load_rows([res])
    fig = report.chart_figure(rows)
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert len(bars) == 2  # the two tasks with a number; the five others get no (0-high) bar
    zero = min(bars, key=lambda p: p.get_height())
    assert zero.get_height() == 0 and zero.get_linewidth() > 0  # drawn as a line, not absent
    assert ax.get_ylim()[0] < 0  # below the axis, so the 0-line is not hidden by it
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("0") == 1 and "25" in texts and texts.count("n/a") == 5
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_process_results_carries_the_row_id_for_sample_logs():
    doc = {"id": "depth_comparison/page_0007/0", "task": "depth_comparison", "answer_type": "choice",
           "answer": "A", "choices": ["left", "right"], "question": "Which is closer?", "bboxes": []}
    out = task_utils.ai4va_fg_process_results(doc, ["<answer>A</answer>"])
    assert out["id"] == "depth_comparison/page_0007/0" and out["accuracy"] == 1.0
