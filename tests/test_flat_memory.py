"""Flat build memory (issue 13): the page list on disk, the audit streaming over spilled rows, COCO
sources split per book loaded file by file, and a build that never holds more than one annotation
file's pages."""

from __future__ import annotations

import gc
import json
import pickle

import pytest

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.build import audit, pipeline
from ai4va_fg_dataset.build.page_store import PageStore
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.page import Balloon, Page, Panel
from ai4va_fg_dataset.synthetic import main as synthetic_main
from ai4va_fg_dataset.synthetic import make_synthetic_ai4va


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _page(k: int) -> Page:
    return Page(page_id=f"t/b/{k}", source="t", image_path=f"/nowhere/{k}.png", width=100 + k, height=200,
                panels=(Panel("p0", (0.0, 0.0, 50.0, 60.0 + k), order=0),),
                balloons=(Balloon("b0", (1.0, 2.0, 3.0, 4.0), text="é" * k),))


# --- PageStore ------------------------------------------------------------------------------------------

def test_page_store_reads_back_every_page():
    pages = [_page(k) for k in range(7)]
    with PageStore(pages[:3]) as store:
        store.extend(pages[3:])
        assert len(store) == 7 and list(store) == pages
        assert store[0] == pages[0] and store[-1] == pages[-1] and store[2:5] == pages[2:5]
        assert store.pickled(4) == pickle.dumps(pages[4], protocol=pickle.HIGHEST_PROTOCOL)
        assert list(store.view(5)) == pages[5:] and len(store.view(2, 4)) == 2 and store.view(2, 4)[-1] == pages[3]
        # independent iterations (no shared file position): nested reads see the right pages
        assert [(a.page_id, b.page_id) for a in store for b in store.view(0, 1)] == [(p.page_id, "t/b/0") for p in pages]
        with pytest.raises(IndexError, match="7"):
            store[7]
        with pytest.raises(IndexError):
            store.view(6)[1]
    assert store.closed
    with pytest.raises(ValueError, match="closed"):
        store[0]


def test_page_store_holds_no_page_in_memory():
    store = PageStore(_page(k) for k in range(50))
    gc.collect()
    assert sum(isinstance(o, Page) for o in gc.get_objects()) == 0
    assert store[10].page_id == "t/b/10"
    store.close()


# --- the audit streams over re-iterable rows -------------------------------------------------------------

def _rows() -> list[dict]:
    rows = []
    for k in range(120):
        split = ("train", "validation", "test")[k % 3]
        rows.append({"id": f"dialog_reordering/p{k}/0", "task": "dialog_reordering", "split": split,
                     "question": "q", "choices": ["1, 2, 3", "2, 1, 3"][:: 1 if k % 4 else -1],
                     "answer": "AB"[k % 5 == 0], "answer_type": "choice", "bboxes": [], "page_id": f"p{k}",
                     "source": "s"})
        rows.append({"id": f"panel_reordering/p{k}/0", "task": "panel_reordering", "split": split, "question": "q",
                     "choices": ["1: A, 2: B", "1: B, 2: A"], "answer": "AB"[k % 2], "answer_type": "choice",
                     "bboxes": [], "page_id": f"p{k}", "source": "s",
                     "geometry": {"slots": [[0, 0, 10, 20 + k % 3], [0, 0, 30, 10]], "tiles": [[0, 0, 10, 20], [0, 0, 30, 10]]}})
        rows.append({"id": f"character_counting/p{k}/0", "task": "character_counting", "split": split,
                     "question": "q", "choices": [], "answer": str(k % 3), "answer_type": "number", "bboxes": [],
                     "page_id": f"p{k}", "source": "s"})
    return rows


def test_audit_on_spilled_rows_equals_the_audit_on_a_list():
    rows = _rows()
    reference = audit.run_audit(rows)
    spilled = audit.AuditRows()
    for r in rows:
        spilled.append(r)
    assert len(spilled) == len(rows) and list(spilled) == rows  # re-iterable, in order
    assert audit.run_audit(spilled) == reference
    assert audit.run_audit(iter(rows)) == reference  # a one-shot iterator is read once into a list
    # geometry given beside the rows (a built folder's item_geometry.jsonl) or carried by them: the same
    geometry = {r["id"]: r.pop("geometry") for r in rows if "geometry" in r}
    assert audit.run_audit(rows, geometry) == reference
    panel = next(r for r in reference["rows"] if r["task"] == "panel_reordering" and r["split"] == "test")
    assert panel["baselines"]["aspect_match"] is not None and panel["n"] == 40
    spilled.close()


def test_audit_tap_spills_rows_and_writes_geometry_in_build_order(tmp_path):
    from ai4va_fg_dataset.schema import Sample

    tap = audit.AuditTap({"p1": "train", "p2": "test"})
    samples = [Sample(id=f"panel_reordering/p{k}/0", task="panel_reordering", page_id=f"p{k}", image=b"",
                      question="q", choices=["1: A, 2: B", "1: B, 2: A"], answer="A", answer_type="choice",
                      bboxes=[[0, 0, 1, 1]], source="s", width=10, height=10) for k in (2, 1)]
    samples[0].audit_meta = {"slots": [[0, 0, 1, 1]], "tiles": []}
    assert list(tap.tap(samples)) == samples
    assert isinstance(tap.rows, audit.AuditRows) and [r["split"] for r in tap.rows] == ["test", "train"]
    assert tap.geometry == {"panel_reordering/p2/0": {"slots": [[0, 0, 1, 1]], "tiles": []}}
    path = tap.write_geometry(tmp_path)
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["panel_reordering/p2/0"]
    tap.close()


# --- COCO sources split per book ------------------------------------------------------------------------

def test_synthetic_set_split_per_file_loads_as_one_source(tmp_path):
    one = make_synthetic_ai4va(tmp_path / "one", n_pages=5, seed=1)
    assert synthetic_main(["--out", str(tmp_path / "many"), "--pages", "5", "--seed", "1", "--pages-per-file", "2"]) == 0
    many = tmp_path / "many"
    assert sorted(p.name for p in many.glob("*.json")) == [f"synthetic_ai4va_00{k}.json" for k in range(3)]
    log = BadRecordLog()
    whole = load_source("synthetic", one, log=log)
    loaded = load_source("synthetic", many, log=log)
    assert not isinstance(loaded, list)  # a generator: pages come file by file
    loaded = list(loaded)
    assert not log.records and len(loaded) == 5
    # the same annotations; only the book (the file stem) differs
    strip = [(p.image_path.rsplit("/", 1)[-1], p.panels, p.entities, p.balloons) for p in whole]
    assert [(p.image_path.rsplit("/", 1)[-1], p.panels, p.entities, p.balloons) for p in loaded] == strip
    assert [p.book for p in loaded] == ["synthetic_ai4va_000"] * 2 + ["synthetic_ai4va_001"] * 2 + ["synthetic_ai4va_002"]


def test_empty_coco_folder_is_a_bad_record(tmp_path):
    with pytest.raises(AnnotationError, match="no \\*.json"):
        list(load_source("coco", tmp_path, log=BadRecordLog()))
    log = BadRecordLog(skip_bad=True)
    assert list(load_source("coco", tmp_path, log=log)) == [] and len(log.records) == 1


def test_pages_per_file_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="pages_per_file"):
        make_synthetic_ai4va(tmp_path, n_pages=2, pages_per_file=0)


# --- the build holds one annotation file's pages at most ------------------------------------------------

def _live_pages() -> int:
    return sum(isinstance(o, Page) for o in gc.get_objects())


def test_build_holds_at_most_one_files_pages(tmp_path, monkeypatch):
    """24 pages in 4 COCO files of 6: while loading, at most one file's pages are alive (plus the
    one being stored); while generating, a page or two; the result is the same as a build of one file."""
    folder = make_synthetic_ai4va(tmp_path / "syn", n_pages=24, seed=2, pages_per_file=6)
    peaks = {"load": 0, "generate": 0}
    append = PageStore.append

    def storing(self, page):
        peaks["load"] = max(peaks["load"], _live_pages())
        append(self, page)

    real_process = pipeline._run_pages

    def watched(engine, work, pages, num_proc):
        for result in real_process(engine, work, pages, num_proc):
            peaks["generate"] = max(peaks["generate"], _live_pages())
            yield result

    monkeypatch.setattr(PageStore, "append", storing)
    monkeypatch.setattr(pipeline, "_run_pages", watched)
    from rich.console import Console

    result = pipeline.build([("synthetic", folder)], tmp_path / "ds", seed=0, num_proc=1, contact_sheet=False,
                            tasks=["panel_reordering", "character_counting"], console=Console(quiet=True))
    assert result.report["pages"] == 24 and result.report["sources"][0]["pages"] == 24
    assert sum(sum(c.values()) for c in result.counts.values()) > 24
    assert 6 <= peaks["load"] <= 6 + 2, peaks  # one file's pages (the adapter's list) + the one in hand
    assert peaks["generate"] <= 3, peaks
    gc.collect()
    assert _live_pages() == 0
