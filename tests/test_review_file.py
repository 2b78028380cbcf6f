"""The review file (ai4va_fg_dataset.build.review) and ``ai4va-fg build --review``: schema, atomic
append, errors naming the bad line, stable item ids, rejected / fixed items and page panel orders
applied to a rebuild of the demo data, missing items reported, counts in the report and the card."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import ai4va_fg_dataset
from ai4va_fg_dataset.build import review as rv
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.page import Page, Panel

DEMO = Path(ai4va_fg_dataset.__file__).parent / "demo_data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _build(out: Path, *extra: str) -> int:
    return main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(out), "--seed", "0",
                 "--split-ratios", "0.6,0.2,0.2", "--skip-bad", "--no-contact-sheet", *extra])


def _rows(out: Path) -> dict[str, dict]:
    """``{id: row}`` of every task config of a build (images as bytes)."""
    rows = {}
    for f in sorted(out.glob("*/*.parquet")):
        for row in pq.read_table(f).to_pylist():
            rows[row["id"]] = row
    return rows


def test_decisions_round_trip_last_line_wins(tmp_path):
    path = tmp_path / "r.jsonl"
    rv.append_decision(path, rv.make_decision("item", "dialog_reordering/p/0", "reject", reason="wrong text",
                                              reviewer="ann"))
    rv.append_decision(path, rv.make_decision("item", "dialog_reordering/p/0", "fix", value="b", reviewer="ann"))
    rv.append_decision(path, rv.make_decision("page", "acbf/book/1", "order", value=["f2", "f1"]))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(set(json.loads(line)) == set(rv.KEYS) for line in lines)
    decisions = rv.read_review(path)
    assert [d.line for d in decisions] == [1, 2, 3]
    last = rv.latest(decisions)
    assert last[("item", "dialog_reordering/p/0")].verdict == "fix"
    assert last[("page", "acbf/book/1")].value == ["f2", "f1"]
    assert not list(tmp_path.glob(".r.jsonl.tmp-*"))  # the atomic rewrite leaves no temporary file


def _line(**fields) -> str:
    base = {"schema": 1, "target": "item", "id": "dialog_reordering/p/0", "verdict": "accept", "reason": None,
            "value": None, "reviewer": "", "time": "2026-01-01T00:00:00+00:00"}
    return json.dumps({**base, **fields})


@pytest.mark.parametrize(("line", "expected"), [
    ("{not json", "not JSON"),
    ('{"schema": 1}', "missing"),
    (_line(verdict="reject"), "needs a reason"),
    (_line(verdict="maybe"), "verdict 'maybe'"),
    (_line(id="nosuchtask/p/0"), "is not '<task>/<page_id>/<n>'"),
    (_line(target="page", id="a/b/c", verdict="order", value=["x", "x"]), "repeat"),
    (_line(schema=2), "schema 2"),
    (_line(time="yesterday"), "ISO 8601"),
    (_line(verdict="fix"), "is not the corrected answer key"),
])
def test_bad_line_is_named(tmp_path, line, expected):
    good = json.dumps(rv.make_decision("item", "panel_reordering/p/1", "accept").to_json())
    path = tmp_path / "r.jsonl"
    path.write_text(good + "\n\n" + line + "\n")
    with pytest.raises(rv.ReviewFileError, match=expected) as err:
        rv.read_review(path)
    assert str(err.value).startswith(f"{path}:3:")


def test_review_file_never_inside_the_build(tmp_path):
    (tmp_path / "build").mkdir()
    with pytest.raises(ValueError, match="inside the build folder"):
        rv.check_review_location(tmp_path / "build" / "r.jsonl", tmp_path / "build")
    assert rv.check_review_location(tmp_path / "r.jsonl", tmp_path / "build") == (tmp_path / "r.jsonl").resolve()
    assert rv.default_review_path([DEMO / "craphound" / "craphound-1.1.acbf"]) == DEMO / "craphound" / rv.REVIEW_FILE_NAME


def test_page_order_override_on_the_page_model():
    page = Page("s/b/1", "s", "x.png", 100, 100,
                panels=(Panel("a", (0, 0, 10, 10), order=0), Panel("b", (20, 0, 30, 10), order=1)))
    d = rv.make_decision("page", "s/b/1", "order", value=["b", "a"])
    gone = rv.make_decision("page", "s/b/2", "order", value=["a"])
    pages, done, missing = rv.apply_page_orders([page], [d, gone])
    assert {p.id: p.order for p in pages[0].panels} == {"a": 1, "b": 0}
    assert done == ["s/b/1"] and missing == [gone]
    with pytest.raises(rv.ReviewFileError, match="has panels"):
        rv.apply_page_orders([page], [rv.make_decision("page", "s/b/1", "order", value=["a", "c"])])


@pytest.fixture(scope="module")
def base_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "ds"
    assert _build(out) == 0
    return out


def test_item_ids_stable_across_rebuilds(base_build, tmp_path):
    again = tmp_path / "again"
    assert _build(again) == 0
    first, second = _rows(base_build), _rows(again)
    assert first and sorted(first) == sorted(second)
    assert all(first[i]["answer"] == second[i]["answer"] and first[i]["question"] == second[i]["question"]
               for i in first)


def test_build_with_review_applies_and_counts(base_build, tmp_path, capsys):
    from datasets import load_dataset

    rows = _rows(base_build)
    dialog = sorted(i for i in rows if i.startswith("dialog_reordering/"))
    panel = sorted(i for i in rows if i.startswith("panel_reordering/"))
    rejected, fixed, accepted, by_letter = dialog[0], dialog[1], dialog[2], dialog[3]
    letters = "ABCDEFGH"[: len(rows[fixed]["choices"])]
    new_key = next(c for c in letters if c != rows[fixed]["answer"])
    letter2 = next(c for c in "ABCDEFGH"[: len(rows[by_letter]["choices"])] if c != rows[by_letter]["answer"])
    page_id = rows[panel[0]]["page_id"]
    report = json.loads((base_build / "build_report.json").read_text())
    assert report["review"] is None
    from ai4va_fg_dataset.build.pipeline import SourceSpec, expand_sources, load_pages
    from ai4va_fg_dataset.errors import BadRecordLog

    pages, _ = load_pages(expand_sources([SourceSpec("auto", DEMO)]), BadRecordLog(skip_bad=True))
    page = next(p for p in pages if p.page_id == page_id)
    annotated = [p.id for p in sorted(page.panels, key=lambda p: p.order)]

    review = tmp_path / "annotations" / "review.jsonl"
    for d in [rv.make_decision("item", rejected, "reject", reason="annotation error"),
              rv.make_decision("item", fixed, "fix", value=rows[fixed]["choices"][letters.index(new_key)]),
              rv.make_decision("item", by_letter, "fix", value=letter2.lower()),
              rv.make_decision("item", accepted, "accept"),
              rv.make_decision("item", "dialog_reordering/gone/page/0", "accept"),
              rv.make_decision("page", page_id, "order", value=annotated[::-1])]:
        rv.append_decision(review, d)
    out = tmp_path / "reviewed"
    assert _build(out, "--review", str(review)) == 0
    printed = capsys.readouterr().out
    assert "1 review decisions point at items or pages not in" in printed and "dialog_reordering/gone/page/0" in printed

    after = _rows(out)
    assert rejected not in after and after[fixed]["answer"] == new_key and after[accepted] == rows[accepted]
    assert after[by_letter]["answer"] == letter2
    assert set(after) == set(rows) - {rejected}
    changed = [i for i in panel if rows[i]["page_id"] == page_id]
    assert changed and all(after[i]["image"] != rows[i]["image"] for i in changed)  # markers 1/2 swap places
    others = [i for i in panel if rows[i]["page_id"] != page_id]
    assert all(after[i]["image"] == rows[i]["image"] for i in others)

    rep = json.loads((out / "build_report.json").read_text())["review"]
    assert rep["per_task"] == {"dialog_reordering": {"reviewed": 4, "accepted": 1, "rejected": 1, "fixed": 2}}
    assert rep["pages_reordered"] == [page_id]
    assert rep["missing"] == [{"line": 5, "target": "item", "id": "dialog_reordering/gone/page/0", "verdict": "accept"}]
    card = (out / "README.md").read_text()
    assert "## Human review" in card and "| `dialog_reordering` | 4 | 1 | 1 | 2 |" in card

    ds = load_dataset(str(out), "dialog_reordering")
    ids = {i: a for split in ds.values() for i, a in zip(split["id"], split["answer"])}
    assert rejected not in ids and ids[fixed] == new_key


def test_unfit_fix_and_review_inside_out_exit_2(base_build, tmp_path, capsys):
    rows = _rows(base_build)
    item = next(i for i in sorted(rows) if i.startswith("dialog_reordering/"))
    review = tmp_path / "review.jsonl"
    rv.append_decision(review, rv.make_decision("item", item, "fix", value="Z"))
    assert _build(tmp_path / "out", "--review", str(review)) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "key 'Z' is neither one of its options" in err
    assert _build(tmp_path / "out2", "--review", str(tmp_path / "nope.jsonl")) == 2
    assert "no such review file" in capsys.readouterr().err


def test_review_session_filters_status_and_results(base_build, tmp_path):
    """The app's model without a browser: filters, review status, and an lmms-eval run's answers,
    scores and zoom crops (agent record in page pixels; plain tool calls as written)."""
    from ai4va_fg_dataset.build.review_app import ReviewSession, read_results

    rows = _rows(base_build)
    item, other = sorted(i for i in rows if i.startswith("panel_reordering/"))[:2]
    run = tmp_path / "run" / "my-model"
    run.mkdir(parents=True)
    record = json.dumps({"ai4va_fg_zoom_trajectory": 1, "turns": ["t1", "<answer>B</answer>"], "tool_calls": 1,
                         "crops": [[10, 20, 110, 220]], "tool_errors": [], "stop": "answer"})
    plain = ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}</tool_call>'
             "<answer>A</answer>")
    lines = [{"doc_id": 0, "doc": {"id": item}, "resps": [[record]], "filtered_resps": [record], "accuracy": 0.0,
              "parse_failure": 0.0},
             {"doc_id": 1, "doc": {"id": other}, "resps": [[plain]], "filtered_resps": ["A"], "accuracy": 1.0},
             {"doc_id": 2, "doc": {}, "resps": [["?"]]}]
    (run / "20260101_samples_ai4va_fg_panel_reordering_tool.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n")
    results, unmatched = read_results(tmp_path / "run")
    assert unmatched == 1 and results[item][0].crops == [[10.0, 20.0, 110.0, 220.0]]
    assert results[item][0].model == "my-model" and results[item][0].task == "ai4va_fg_panel_reordering_tool"
    assert results[other][0].crops == [[1.0, 2.0, 30.0, 40.0]] and results[other][0].scores["accuracy"] == 1.0

    review = tmp_path / "notes" / "review.jsonl"
    with pytest.raises(ValueError, match="inside the build folder"):
        ReviewSession(base_build, review_file=base_build / "review.jsonl")
    session = ReviewSession(base_build, review_file=review, results=tmp_path / "run", reviewer="t")
    assert len(session.select()) == len(rows)
    assert {session.data.rows[n]["task"] for n in session.select(task="panel_reordering")} == {"panel_reordering"}
    assert [session.data.rows[n]["id"] for n in session.select(flag="model wrong")] == [item]
    session.record(rv.make_decision("item", item, "reject", reason="bad crop", reviewer="t"))
    assert [session.data.rows[n]["id"] for n in session.select(status="reject")] == [item]
    assert len(session.select(status="unreviewed")) == len(rows) - 1
    assert "Reviewed 1 /" in session.progress(session.select())
    text = session.describe(session.data.by_id[item])
    assert "my-model" in text and "accuracy 0" in text and "1 crop(s)" in text and "status **reject (bad crop)**" in text
    n = session.data.by_id[item]
    plain_image, drawn = session.render(n, False, False), session.render(n, True, True)
    assert plain_image.size == drawn.size and plain_image.tobytes() != drawn.tobytes()
    assert rv.read_review(review)[0].id == item
    with pytest.raises(FileNotFoundError, match="samples_"):
        read_results(tmp_path / "notes")
