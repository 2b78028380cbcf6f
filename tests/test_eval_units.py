"""Unit tests of the evaluation pieces: answer extraction, zoom IoU statistics (hand-computed),
trajectory records, scoring, the include-path overlay and the report renderer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai4va_fg_dataset.core import scoring as answers
from ai4va_fg_dataset.tasks.spec import task_names
from lmms_eval_tasks import path, report, scoring, trajectory, zoom_stats

CHOICES = ["running", "sitting on a chair", "jumping", "sleeping"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>B</answer>", "B"),
        ("B", "B"),
        ("(C)", "C"),
        ("D.", "D"),
        ("B. sitting on a chair", "B"),
        ("The answer is C.", "C"),
        ("Answer: D", "D"),
        ("<think>maybe A? no</think><answer>(C)</answer>", "C"),
        ("<answer>A</answer> wait <answer>B</answer>", "B"),  # the last answer tag wins
        ("<answer>B", "B"),  # truncated closing tag
        ("<answer>B is correct</answer>", "B"),
        ("sitting on a chair", "B"),  # option text
        ("<answer>He is jumping.</answer>", "C"),  # one option text inside
        ("I think the character is sleeping.", "D"),
        (('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}</tool_call>'
         "<answer>A</answer>"), "A"),
        ("A man runs", None),  # the article is not option A
        ("<answer>A man</answer>", None),
        ("E", None),  # not one of the 4 letters
        ("<answer>E</answer>", None),
        ("", None),
        (None, None),
        ("<think>B</think>", None),  # reasoning only
        ("\n\n\n", None),
    ],
)
def test_extract_choice(text, expected):
    assert answers.extract_choice(text, CHOICES) == expected


def test_extract_choice_two_options_and_letters():
    assert answers.extract_choice("<answer>B</answer>", ["yes", "no"]) == "B"
    assert answers.extract_choice("<answer>C</answer>", ["yes", "no"]) is None
    assert answers.extract_choice("<answer>no</answer>", ["yes", "no"]) == "B"
    assert answers.extract_choice("B", []) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>3</answer>", 3),
        ("<answer>3 times</answer>", 3),
        ("<answer>three</answer>", 3),
        ("<answer>twice</answer>", 2),
        ("<answer>no</answer>", 0),
        ("He appears 4 times", 4),
        ("In panels 1, 2 and 5 the character appears 3 times", 3),  # last number without tags
        ("<answer>5</answer> (panels 1 and 2)", 5),
        ("<think>1, 2, 3</think><answer>12</answer>", 12),
        ("<answer>2.5</answer>", 2.5),  # read, and wrong for any count (absolute error 0.5)
        ("<answer>3.0</answer>", 3),  # a whole decimal is that integer
        ("<answer>" + "9" * 5000 + "</answer>", None),  # no count; int() of 4300+ digits would raise
        ("none", None),  # bare "none" outside tags is prose, not a count
        ("", None),
        ("no idea", None),
    ],
)
def test_extract_number(text, expected):
    assert answers.extract_number(text) == expected


def test_extract_open():
    assert answers.extract_open("<think>x</think><answer> a red ball </answer>") == "a red ball"
    assert answers.extract_open("A red ball.") == "A red ball."
    assert answers.extract_open("<think>only thinking</think>") is None
    assert answers.extract_open("  \n ") is None


def test_crop_ious_hand_computed():
    gt = [[0, 0, 10, 10], [20, 0, 30, 10]]
    # crop 1 = GT 2 shifted by 5 px: inter 5x10=50, union 100+100-50=150 -> 1/3
    # crop 2 = GT 1 exactly -> 1.0; Hungarian pairs crop1-GT2, crop2-GT1
    assert zoom_stats.crop_ious([[25, 0, 35, 10], [0, 0, 10, 10]], gt) == pytest.approx([1 / 3, 1.0])
    # Two crops of the same region earn one good IoU: the second crop is matched to the other GT box (IoU 0).
    assert zoom_stats.crop_ious([[0, 0, 10, 10], [0, 0, 10, 10]], gt) == pytest.approx([1.0, 0.0])
    # More crops than GT boxes: the unmatched crop scores 0.
    assert zoom_stats.crop_ious([[0, 0, 10, 10], [0, 0, 5, 10], [0, 0, 10, 5]], [[0, 0, 10, 10]]) == \
        pytest.approx([1.0, 0.0, 0.0])
    assert zoom_stats.crop_ious([], gt) == []


def test_sample_zoom_stats_and_aggregations():
    gt = [[0, 0, 10, 10]]
    s = zoom_stats.sample_zoom_stats(2, [[0, 0, 5, 10], [0, 0, 10, 10]], gt)
    # Hungarian: crop 2 (IoU 1.0) takes the only GT box; crop 1 (IoU 0.5) is unmatched -> 0.
    assert s["tool_calls"] == 2.0
    assert s["zoom_iou_first"] == 0.0 and s["zoom_iou_second"] == 1.0
    assert s["zoom_iou"] == {"iou_sum": 1.0, "crops": 2}
    one = zoom_stats.sample_zoom_stats(1, [[0, 0, 5, 10]], gt)
    assert one["zoom_iou_first"] == 0.5 and one["zoom_iou_second"] is None
    none = zoom_stats.sample_zoom_stats(3, [], gt)
    assert none["zoom_iou"] is None and none["tool_calls"] == 3.0
    assert zoom_stats.sample_zoom_stats(1, [[0, 0, 5, 5]], [])["zoom_iou"] is None  # no GT: not applicable
    assert zoom_stats.sample_zoom_stats(1, None, gt)["zoom_iou_first"] is None  # crops unknown
    # Pooled over crops: (1.0 + 0.5) / 3 crops, not the mean of sample means (0.5 + 0.5) / 2.
    assert zoom_stats.pooled_crop_iou([s["zoom_iou"], one["zoom_iou"], None]) == pytest.approx(0.5)
    assert zoom_stats.pooled_crop_iou([None, None]) is None
    assert zoom_stats.mean_skip_none([1.0, None, 0.0, float("nan")]) == 0.5
    assert zoom_stats.mean_skip_none([None]) is None


def test_trajectory_roundtrip_and_plain_text():
    t = trajectory.Trajectory(turns=["<tool_call>x</tool_call>", "<answer>B</answer>"], tool_calls=1,
                              crops=[[1, 2, 3, 4]], tool_errors=[], stop="answer")
    back = trajectory.loads(t.dumps())
    assert back.turns == t.turns and back.crops == [[1.0, 2.0, 3.0, 4.0]] and back.tool_calls == 1
    plain = trajectory.loads('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1,2,3,4]}}'
                             "</tool_call><answer>A</answer>")
    assert plain.tool_calls == 1 and plain.crops is None
    assert trajectory.loads(None).text == ""
    assert trajectory.loads('{"not": "a trajectory"}').text == '{"not": "a trajectory"}'


def _doc(**kw):
    base = {"id": "x/1", "question": "q", "choices": ["yes", "no"], "answer": "B", "answer_type": "choice",
            "bboxes": [[0, 0, 10, 10]]}
    base.update(kw)
    return base


def test_score_sample():
    assert scoring.score_sample(_doc(), "<answer>B</answer>")["accuracy"] == 1.0
    bad = scoring.score_sample(_doc(), "hmm")
    assert bad["accuracy"] == 0.0 and bad["parse_failure"] == 1.0
    count = scoring.score_sample(_doc(answer="4", answer_type="number", choices=[]), "<answer>6</answer>")
    assert count["accuracy"] == 0.0 and count["mae"] == 2.0 and count["parse_failure"] == 0.0
    half = scoring.score_sample(_doc(answer="4", answer_type="number", choices=[]), "<answer>4.5</answer>")
    assert half["accuracy"] == 0.0 and half["mae"] == 0.5 and half["parse_failure"] == 0.0
    assert scoring.score_sample(_doc(answer="4", answer_type="number", choices=[]), "?")["mae"] is None
    traj = trajectory.Trajectory(turns=["<answer>B</answer>"], tool_calls=1, crops=[[0, 0, 5, 10]]).dumps()
    zoomed = scoring.score_sample(_doc(), traj)
    assert zoomed["accuracy"] == 1.0 and zoomed["zoom_iou_first"] == 0.5
    with pytest.raises(ValueError, match="x/1"):
        scoring.score_sample(_doc(answer_type="weird"), "B")
    with pytest.raises(ValueError, match="not an integer"):
        scoring.score_sample(_doc(answer="many", answer_type="number"), "3")
    with pytest.raises(ValueError, match="x/1.*option letters"):
        scoring.score_sample(_doc(answer="yes"), "B")  # a choice key must be a letter


class _FakeJudge:
    def __init__(self, correct):
        self.correct = correct
        self.calls = []

    def judge(self, question, reference, prediction):
        from lmms_eval_tasks.judge import Verdict

        self.calls.append((question, reference, prediction))
        return Verdict(correct=self.correct, error=None if self.correct is not None else "down")


def test_score_open_uses_judge():
    doc = _doc(answer="a red ball", answer_type="open", choices=[])
    judge = _FakeJudge(True)
    assert scoring.score_sample(doc, "<answer>red ball</answer>", judge=judge)["accuracy"] == 1.0
    assert judge.calls == [("q", "a red ball", "red ball")]
    failed = scoring.score_sample(doc, "<answer>red ball</answer>", judge=_FakeJudge(None))
    assert failed["accuracy"] == 0.0 and failed["judge_failure"] == 1.0
    empty_judge = _FakeJudge(True)
    empty = scoring.score_sample(doc, "<think>...</think>", judge=empty_judge)
    assert empty["parse_failure"] == 1.0 and empty_judge.calls == []  # nothing to judge


def test_include_path_and_overlay(tmp_path, capsys):
    assert path.main([]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == path.tasks_dir() and (printed / "ai4va_fg.yaml").is_file()
    data = tmp_path / "data"
    data.mkdir()
    out = path.write_overlay(str(data), tmp_path / "overlay")
    task = (out / "ai4va_fg_action_recognition_tool.yaml").read_text()
    assert f"include: {path.tasks_dir() / 'ai4va_fg_action_recognition_tool.yaml'}" in task
    assert f"dataset_path: '{data.resolve()}'" in task
    assert (out / "ai4va_fg.yaml").read_text() == (path.tasks_dir() / "ai4va_fg.yaml").read_text()
    n_yaml = len(list(path.tasks_dir().glob("*.yaml")))
    assert len(list(out.glob("*.yaml"))) == n_yaml
    # Re-running replaces the overlay (atomically), Hub ids pass through, missing folders are errors.
    hub = path.write_overlay("someone/ai4va-fg", tmp_path / "overlay")
    assert "dataset_path: 'someone/ai4va-fg'" in (hub / "ai4va_fg_depth_comparison.yaml").read_text()
    assert path.main(["--dataset", str(tmp_path / "missing" / "dir")]) == 2
    assert "does not exist" in capsys.readouterr().err


CARD = """---
configs:
- config_name: dialog_reordering
  data_files:
  - split: train
    path: [dialog_reordering/train-00000-of-00001.parquet]
  - split: test
    path: [dialog_reordering/test-00000-of-00001.parquet]
- config_name: depth_comparison
  data_files:
  - split: train
    path: [depth_comparison/train-00000-of-00001.parquet]
---
# AI4VA-FG
"""


def test_overlay_keeps_only_the_tasks_a_build_has(tmp_path, capsys):
    """A partial build (e.g. real sources without character annotations) still runs as `--tasks ai4va_fg`."""
    import yaml

    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text(CARD)
    assert path.configs_with_test_split(data) == {"dialog_reordering"}
    assert path.main(["--dataset", str(data), "--out", str(tmp_path / "overlay")]) == 0
    printed = capsys.readouterr()
    out = Path(printed.out.strip())
    assert "left out: ai4va_fg_character_counting: the build has no test split" in printed.err
    names = sorted(p.name for p in out.glob("*.yaml"))
    assert names == ["ai4va_fg.yaml", "ai4va_fg_dialog_reordering.yaml", "ai4va_fg_dialog_reordering_think.yaml",
                     "ai4va_fg_dialog_reordering_tool.yaml", "ai4va_fg_think.yaml", "ai4va_fg_tool.yaml"]
    group = yaml.safe_load((out / "ai4va_fg.yaml").read_text())
    assert group["group"] == "ai4va_fg" and group["task"] == ["ai4va_fg_dialog_reordering"]
    assert group["aggregate_metric_list"][0]["metric"] == "accuracy"
    # depth_comparison has no test split: left out, and said so; the zoom group has no task left
    out_lines = path.write_overlay(str(data), tmp_path / "overlay2", omitted=(omitted := [])) and omitted
    assert "ai4va_fg_depth_comparison: the build has no test split of 'depth_comparison'" in out_lines
    assert "ai4va_fg_zoom: none of its tasks is in the build" in out_lines
    (data / "README.md").write_text(CARD.replace("split: test", "split: validation"))
    with pytest.raises(ValueError, match="no AI4VA-FG task with a test split"):
        path.write_overlay(str(data), tmp_path / "overlay3")


def test_default_config_is_not_a_task(tmp_path):
    """A build's card also has the all-tasks config `default` (every task's rows, told apart by the `task`
    column): it keeps no task in the overlay, and a card with only `default` has no task to run."""
    default = ("- config_name: default\n  default: true\n  data_files:\n  - split: test\n    path:\n"
               "    - dialog_reordering/test-00000-of-00001.parquet\n    - depth_comparison/test-00000-of-00001.parquet\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text(CARD.replace("configs:\n", "configs:\n" + default))
    assert path.configs_with_test_split(data) == {"default", "dialog_reordering"}
    assert path.task_configs_with_test_split(data) == {"dialog_reordering"}
    assert set(path.task_configs()) == set(task_names()) and "default" not in path.task_configs()
    omitted: list[str] = []
    out = path.write_overlay(str(data), tmp_path / "overlay", omitted)
    assert sorted(p.name for p in out.glob("*_reordering*.yaml")) == [
        "ai4va_fg_dialog_reordering.yaml", "ai4va_fg_dialog_reordering_think.yaml", "ai4va_fg_dialog_reordering_tool.yaml"]
    assert not list(out.glob("ai4va_fg_depth_comparison*.yaml"))
    (data / "README.md").write_text("---\nconfigs:\n" + default + "---\n")
    assert path.task_configs_with_test_split(data) == set()
    with pytest.raises(ValueError, match="no AI4VA-FG task with a test split"):
        path.write_overlay(str(data), tmp_path / "overlay2")


def test_eval_wrapper_failure_lines():
    """`ai4va-fg eval` reports the error behind lmms-eval's download retries, and keeps include paths that
    are not the AI4VA-FG task folder after its overlay."""
    from tenacity import RetryError, retry, stop_after_attempt

    from lmms_eval_tasks import run_eval

    @retry(stop=stop_after_attempt(2))
    def load():
        raise ValueError("BuilderConfig 'depth_comparison' not found. Available: ['default', 'dialog_reordering']")

    with pytest.raises(RetryError) as info:
        load()
    line, known = run_eval.describe_failure(info.value, "/data/x")
    assert known and line.startswith("the dataset /data/x has no config 'depth_comparison' (available: "
                                      "['default', 'dialog_reordering']): the build has no depth_comparison rows; "
                                      "build it with `ai4va-fg build --source auto --path DATA --out /data/x`")
    other, known = run_eval.describe_failure(RuntimeError("CUDA out of memory\nmore"), "/data/x")
    assert (other, known) == ("RuntimeError: CUDA out of memory", False)
    assert run_eval._include_paths(Path("/o"), None) == ["/o"]
    assert run_eval._include_paths(Path("/o"), [str(path.tasks_dir()), "/my/tasks"]) == ["/o", "/my/tasks"]


def _results(model_args, tasks):
    return {"results": {name: {"alias": name, **{f"{k},none": v for k, v in m.items()},
                               "accuracy_stderr,none": 0.1} for name, m in tasks.items()},
            "config": {"model": "qwen2_5_vl", "model_args": model_args}}


def test_report_tables(tmp_path):
    a = tmp_path / "a" / "m" / "1_results.json"
    a.parent.mkdir(parents=True)
    a.write_text(json.dumps(_results("pretrained=Qwen/Qwen2.5-VL-7B-Instruct,device=cuda", {
        "ai4va_fg_action_recognition": {"accuracy": 0.4354, "parse_failure": 0.01},
        "ai4va_fg_character_counting": {"accuracy": 0.0811, "mae": 1.5, "parse_failure": 0.0},
        "ai4va_fg": {"accuracy": 0.3},  # the group row is not a task column
        "mmmu_val": {"accuracy": 0.5},  # other benchmarks are ignored
    })))
    b = tmp_path / "b_results.json"
    b.write_text(json.dumps(_results("pretrained=Qwen/Qwen2.5-VL-7B-Instruct", {
        "ai4va_fg_character_identification_tool": {"accuracy": 0.7132, "tool_calls": 1.88, "zoom_iou": 0.835,
                                                    "zoom_iou_first": 0.842, "zoom_iou_second": 0.829},
    })))
    rows = report.load_rows(report.find_result_files([str(tmp_path / "a"), str(b)]))
    assert [r.label for r in rows] == ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct (tool)"]
    table = report.accuracy_table(rows)
    assert table[0] == ["model", "PanelU", "Action", "Depth", "DialogR", "PanelR", "CharID", "CharCount"]
    assert table[1] == ["random", "-", "25.00", "50.00", "50.00", "50.00", "50.00", "-"]
    assert table[2] == ["Qwen/Qwen2.5-VL-7B-Instruct", "-", "43.54", "-", "-", "-", "-", "8.11"]
    assert table[3][6] == "71.32"
    assert report.zoom_table(rows)[1] == ["Qwen/Qwen2.5-VL-7B-Instruct", "CharID", "1.88", "0.835", "0.842", "0.829"]
    out = tmp_path / "out"
    assert report.main([str(tmp_path / "a"), str(b), "--out", str(out)]) == 0
    md = (out / "ai4va_fg_results.md").read_text()
    assert "| random | - | 25.00 |" in md and "| 1.50 |" in md  # counting MAE
    csv_lines = (out / "ai4va_fg_results.csv").read_text().splitlines()
    runs = [line for line in csv_lines if ",paper," not in line]  # the paper's reference rows follow the runs
    assert len(runs) == 4 and csv_lines[2].startswith("Qwen/Qwen2.5-VL-7B-Instruct,direct,")
    assert (out / "ai4va_fg_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp"))  # no temp files left behind


def test_report_bad_input(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope.json")]) == 2
    bad = tmp_path / "x_results.json"
    bad.write_text("{not json")
    assert report.main([str(bad)]) == 2
    other = tmp_path / "y_results.json"
    other.write_text(json.dumps(_results("pretrained=m", {"mmmu_val": {"accuracy": 0.5}})))
    assert report.main([str(other)]) == 2
    err = capsys.readouterr().err
    assert "nope.json" in err and "x_results.json" in err and "no AI4VA-FG task" in err
    assert report.main([str(other), "--label", "a", "--label", "b"]) == 2


def test_eval_plugin_does_not_import_training_code():
    """The eval extra has no TRL: the lmms-eval plugin uses ai4va_fg_dataset (chat template, vision
    frame, zoom tool), never trl_rarl or trl."""
    import subprocess
    import sys

    code = ("import sys, lmms_eval_tasks.models.zoom_agent, lmms_eval_tasks.ai4va_fg.utils, "
            "lmms_eval_tasks.report, lmms_eval_tasks.judge, lmms_eval_tasks.path, lmms_eval_tasks.run_eval\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trl_rarl', 'trl')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"


# --- hostile report inputs (issue "Nothing lost, nothing stale, nothing raised", part 5): one line naming
# --- the file, exit 2, no traceback, nothing written.

_GOOD_TASKS = {"ai4va_fg_action_recognition": {"accuracy": 0.5}}


@pytest.mark.parametrize("name, content, message", [
    ("nonutf8_results.json", b'{"results": {"ai4va_fg_action_recognition": {"accuracy,none": 0.5}}, "x": "\xff\xfe"}',
     "not UTF-8"),
    ("config_list_results.json", json.dumps({**_results("", _GOOD_TASKS), "config": ["a"]}).encode(),
     "'config' is a list"),
    ("args_list_results.json", json.dumps(_results([1, 2], _GOOD_TASKS)).encode(), "model_args"),
    ("args_strs_results.json", json.dumps(_results(["ab"], _GOOD_TASKS)).encode(), "model_args"),
    ("bigint_results.json", b'{"results": {"ai4va_fg_action_recognition": {"accuracy,none": 1' + b"0" * 5000
     + b"}}}", None),
    ("deep_results.json", b'{"results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
])
def test_report_hostile_inputs_one_line_exit_2(tmp_path, capsys, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "out"
    code = report.main([str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    if message is None:  # a number no float holds is not a crash: the cell shows "-"
        assert code == 0 and "| model | - | - | - | - | - | - | - |" in (out / "ai4va_fg_results.md").read_text()
        return
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ai4va-fg report: error: ") and name in lines[0]
    assert message in lines[0] and "Traceback" not in err


def test_report_non_finite_and_huge_metrics_show_as_missing(tmp_path):
    res = tmp_path / "m_results.json"
    res.write_text('{"results": {"ai4va_fg_action_recognition": {"accuracy,none": Infinity},'
                   ' "ai4va_fg_depth_comparison": {"accuracy,none": ' + "9" * 400 + '},'
                   ' "ai4va_fg_dialog_reordering": {"accuracy,none": true}}, "config": {"model_args": "pretrained=m"}}')
    rows = report.load_rows([res])
    assert report.accuracy_table(rows)[2] == ["m", "-", "-", "-", "-", "-", "-", "-"]
    assert report.main([str(res), "--out", str(tmp_path / "out")]) == 0


def test_report_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    res = tmp_path / "a_results.json"
    res.write_text(json.dumps(_results("pretrained=m", _GOOD_TASKS)))
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    assert report.main([str(res), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "blocker" in err[0] and "cannot write" in err[0]


@pytest.mark.parametrize("record", [
    '{"ai4va_fg_zoom_trajectory": 1, "turns": ["<answer>B</answer>"], "crops": [["a", 1, 2, 3]]}',
    '{"ai4va_fg_zoom_trajectory": 1, "turns": ["<answer>B</answer>"], "tool_calls": "many"}',
    '{"ai4va_fg_zoom_trajectory": 1, "turns": ["<answer>B</answer>"], "crops": [[0, 0, 1' + "0" * 5000 + ', 4]]}',
    '{"ai4va_fg_zoom_trajectory": 1, "turns": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"ai4va_fg_zoom_trajectory": 1, "turns": [5], "crops": 7}',
])
def test_hostile_trajectory_records_read_as_text(record):
    """A model can write a tagged JSON record as its answer: reading it never raises (it did before)."""
    traj = trajectory.loads(record)
    assert traj.turns == [record] and traj.crops is None
    assert scoring.score_sample(_doc(), record)["accuracy"] in (0.0, 1.0)
