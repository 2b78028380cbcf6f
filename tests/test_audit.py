"""`ai4va-fg audit`: blind baselines detect planted shortcuts, stay at chance on balanced items, and
the command reads a built folder, writes audit.json / audit.md and fails only on bad input."""

from __future__ import annotations

import json
import random

import pytest
from shared_data import DEMO_DATA

from ai4va_fg_dataset.build.audit import (
    AUDIT_JSON,
    AUDIT_MD,
    ITEM_GEOMETRY,
    audit_markdown,
    balance_answer_letters,
    read_rows,
    run_audit,
)
from ai4va_fg_dataset.build.export import foreign_entries
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.schema import CHOICE_LETTERS, Sample

SPLITS = ("train", "validation", "test")


def _row(i, task, choices, correct, split=None, **extra):
    return {"id": f"{task}/x/{i}", "task": task, "split": split or SPLITS[i % 3], "question": "q", "choices": choices,
            "answer": CHOICE_LETTERS[choices.index(correct)], "answer_type": "choice", "bboxes": [],
            "page_id": f"x/{i}", "source": "synthetic", **extra}


def _perms(rng, k=3):
    ident = list(range(1, k + 1))
    p = ident[:]
    while p == ident:
        rng.shuffle(p)
    return ", ".join(map(str, p))


def test_planted_dialog_shortcut_is_flagged():
    # the old generator: the listed order is never correct and is offered as the distractor in 30% of items
    rng = random.Random(0)
    rows = []
    for i in range(600):
        correct = _perms(rng)
        wrong = "1, 2, 3" if rng.random() < 0.3 else next(p for p in iter(lambda: _perms(rng), None) if p != correct)
        choices = [correct, wrong]
        rng.shuffle(choices)
        rows.append(_row(i, "dialog_reordering", choices, correct))
    audit = run_audit(rows)
    test = next(r for r in audit["rows"] if r["split"] == "test")
    assert test["baselines"]["never_listed"] > 60 and test["flagged"]
    assert {r["split"] for r in audit["flagged"]} >= {"train", "test", "held_out"}


def test_planted_letter_and_answer_priors_are_flagged():
    rng = random.Random(1)
    labels = ["running", "sitting", "standing", "jumping", "eating"]
    rows = []
    for i in range(400):
        correct = "running" if rng.random() < 0.6 else rng.choice(labels)  # label prior
        options = [correct] + rng.sample([x for x in labels if x != correct], 3)
        rng.shuffle(options)
        rows.append(_row(i, "action_recognition", options, correct))
    audit = run_audit(rows)
    held = next(r for r in audit["rows"] if r["split"] == "held_out")
    assert held["chance"] == 25.0
    assert held["baselines"]["answer_prior"] > 50 and held["baselines"]["text_only"] > 50 and held["flagged"]
    # letter prior: the answer is A in 70% of the items
    rows = [_row(i, "depth_comparison", ["Entity 1", "Entity 2"], "Entity 1" if (i * 7) % 10 < 7 else "Entity 2")
            for i in range(300)]
    held = next(r for r in run_audit(rows)["rows"] if r["split"] == "held_out")
    assert held["baselines"]["letter_prior"] == pytest.approx(70, abs=3) and held["flagged"]


def test_planted_panel_shape_shortcut_is_flagged_and_equal_tiles_are_not():
    rng = random.Random(2)
    rows, geometry, fair = [], {}, {}
    for i in range(300):
        wide, tall = [0, 0, 300, 100], [0, 200, 100, 500]
        a_first = rng.random() < 0.5
        tiles = [[400, 0, 700, 100], [400, 200, 500, 500]] if a_first else [[400, 200, 500, 500], [400, 0, 700, 100]]
        correct = "1: A, 2: B" if a_first else "1: B, 2: A"
        row = _row(i, "panel_reordering", ["1: A, 2: B", "1: B, 2: A"], correct)
        rows.append(row)
        geometry[row["id"]] = {"slots": [wide, tall], "tiles": tiles, "shown": tiles}
        fair[row["id"]] = {"slots": [wide, tall], "tiles": [[400, 0, 600, 200], [400, 300, 600, 500]], "shown": tiles}
    shaped = run_audit(rows, geometry)
    assert all(r["baselines"]["aspect_match"] == 100.0 for r in shaped["rows"]) and shaped["flagged"]
    same = run_audit(rows, fair)  # equal tiles: the heuristic cannot decide and answers A
    letter_a = 100 * sum(r["answer"] == "A" for r in rows) / len(rows)
    assert next(r for r in same["rows"] if r["split"] == "train")["baselines"]["aspect_match"] == pytest.approx(
        100 * sum(r["answer"] == "A" for r in rows if r["split"] == "train") / 100)
    assert abs(letter_a - 50) < 10


def test_balance_answer_letters_is_exact_per_task_and_split():
    samples = [Sample(id=f"depth_comparison/p{i}/0", task="depth_comparison", image=b"", question="q",
                      answer="A", answer_type="choice", page_id=f"p{i}", source="s", width=1, height=1,
                      choices=["Entity 1", "Entity 2"]) for i in range(101)]
    splits = {f"p{i}": SPLITS[i % 3] for i in range(101)}
    out = list(balance_answer_letters(samples, splits, seed=0))
    for split in SPLITS:
        answers = [s.answer for s in out if splits[s.page_id] == split]
        assert abs(answers.count("A") - answers.count("B")) <= 1
    assert all(s.choices[CHOICE_LETTERS.index(s.answer)] == "Entity 1" for s in out)  # the key travels with it


def test_speaker_items_are_balanced_only_when_their_options_name_no_drawn_tag():
    def item(i, choices):
        return Sample(id=f"speaker_attribution/p{i}/0", task="speaker_attribution", image=b"", question="q",
                      answer="A", answer_type="choice", page_id=f"p{i}", source="s", width=1, height=1,
                      choices=list(choices))

    names = [item(i, ["Mimi", "Eunice"]) for i in range(40)]
    boxes = [item(100 + i, ["the character in box A", "the character in box B"]) for i in range(40)]
    out = list(balance_answer_letters(names + boxes, {s.page_id: "test" for s in names + boxes}, seed=0))
    by_name = [s for s in out if s.choices[0] in ("Mimi", "Eunice")]
    assert {s.answer for s in by_name} == {"A", "B"} and all(s.choices[ord(s.answer) - 65] == "Mimi" for s in by_name)
    by_box = [s for s in out if "box" in s.choices[0]]  # moving these would point the key at another drawn box
    assert all(s.answer == "A" and s.choices == ["the character in box A", "the character in box B"] for s in by_box)


def test_audit_command_on_a_demo_build(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "--source", "auto", "--path", str(DEMO_DATA), "--out", str(out), "--seed", "0",
                 "--split-ratios", "0.6,0.2,0.2", "--skip-bad", "--num-proc", "1", "--no-contact-sheet",
                 "--tasks", "dialog_reordering,panel_reordering"]) == 0
    built = json.loads((out / AUDIT_JSON).read_text())
    assert (out / ITEM_GEOMETRY).is_file() and (out / AUDIT_MD).is_file()
    report = json.loads((out / "build_report.json").read_text())
    assert "excluded" in report and report["audit"]["file"] == AUDIT_JSON
    card = (out / "README.md").read_text()
    assert "## Item validity" in card and "### Blind baselines" in card and "Nina Improved" in card
    rows, geometry = read_rows(out)
    assert {r["task"] for r in rows} == {"dialog_reordering", "panel_reordering"}
    assert set(geometry) == {r["id"] for r in rows if r["task"] == "panel_reordering"}
    capsys.readouterr()
    again = tmp_path / "again"
    assert main(["audit", str(out), "--out", str(again)]) == 0
    again_audit = json.loads((again / AUDIT_JSON).read_text())
    assert again_audit.pop("excluded_per_source") == report["excluded_per_source"]
    assert again_audit == built  # the same audit from the folder
    assert "| `panel_reordering` | train |" in capsys.readouterr().out
    assert (again / AUDIT_MD).read_text() == audit_markdown({**built, "excluded_per_source": report["excluded_per_source"]})
    # auditing in place rewrites the build's own files: the folder stays a build that may be replaced
    assert main(["audit", str(out)]) == 0
    assert foreign_entries(out) == []


def test_audit_command_bad_input(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["audit", str(tmp_path / "empty")]) == 2
    assert "no <task>/<split>-*.parquet shard" in capsys.readouterr().err
    bad = tmp_path / "bad" / "dialog_reordering"
    bad.mkdir(parents=True)
    (bad / "train-00000-of-00001.parquet").write_bytes(b"not parquet")
    assert main(["audit", str(tmp_path / "bad")]) == 2
    assert "cannot read the audit columns" in capsys.readouterr().err


def test_keep_unchecked_keeps_the_excluded_pages(tmp_path):
    args = ["build", "--source", "auto", "--path", str(DEMO_DATA), "--seed", "0", "--skip-bad", "--num-proc", "1",
            "--no-contact-sheet", "--tasks", "panel_reordering"]
    assert main([*args, "--out", str(tmp_path / "checked")]) == 0
    checked = json.loads((tmp_path / "checked" / "build_report.json").read_text())
    excluded = {e["page_id"] for e in checked["excluded"]}
    assert excluded == {"openmantra/tencho_isoro/039"}  # two panels overlapping both ways (test_reading_order)
    assert checked["excluded_per_source"] == {"openmantra": {"panel_reordering": len(excluded)}}
    assert "| openmantra | `panel_reordering` |" in (tmp_path / "checked" / "README.md").read_text()
    assert main([*args, "--out", str(tmp_path / "kept"), "--keep-unchecked"]) == 0
    kept = json.loads((tmp_path / "kept" / "build_report.json").read_text())
    assert kept["excluded"] == [] and kept["keep_unchecked"] is True
    ids = {r["page_id"] for r in read_rows(tmp_path / "kept")[0]}
    assert excluded & ids  # the page is back
    assert sum(kept["counts"]["panel_reordering"].values()) > sum(checked["counts"]["panel_reordering"].values())
