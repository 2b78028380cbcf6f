"""OpenMantra adapter on the real annotation.json (shared/data), the demo subset and bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from PIL import Image
from shared_data import SHARED_DATA, needs_shared_data

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.adapters.openmantra import OpenMantraAdapter
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.schema import TASKS

DATA = SHARED_DATA / "open-mantra"
DEMO = Path(__file__).parents[1] / "ai4va_fg_dataset" / "demo_data" / "open-mantra"
needs_data = needs_shared_data("the complete OpenMantra annotation (every page of the 3 titles)")


@pytest.fixture(scope="module")
def raw():
    return json.loads((DATA / "annotation.json").read_text(encoding="utf-8")) if DATA.is_dir() else []


@pytest.fixture(scope="module")
def mantra():
    return load_source("openmantra", DATA, log=BadRecordLog()) if DATA.is_dir() else []


@needs_data
def test_counts(mantra, raw):
    assert sorted({p.book for p in mantra}) == ["balloon_dream", "tencho_isoro", "tojime_no_siora"]
    assert len(mantra) == 124 and len({p.page_id for p in mantra}) == 124
    assert sum(len(p.panels) for p in mantra) == sum(len(pg["frame"]) for b in raw for pg in b["pages"])
    assert sum(len(p.balloons) for p in mantra) == sum(len(pg["text"]) for b in raw for pg in b["pages"])


@needs_data
def test_values_and_order_match_raw(mantra, raw):
    by_id = {p.page_id: p for p in mantra}
    for book in raw:
        for pg in book["pages"]:
            stem = Path(pg["image_paths"]["ja"]).stem
            p = by_id[f"openmantra/{book['book_title']}/{stem}"]
            assert p.reading_direction == "rtl" and p.license == "CC BY-NC 4.0"
            assert [q.bbox for q in p.panels] == [
                (f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"]) for f in pg["frame"]]
            assert [q.order for q in p.panels] == list(range(len(pg["frame"])))
            assert [b.text for b in p.balloons] == [t["text_en"] or None for t in pg["text"]]
            assert [b.order for b in p.balloons] == list(range(len(pg["text"])))
    first = by_id["openmantra/tojime_no_siora/000"]
    assert (first.width, first.height) == Image.open(DATA / "images/tojime_no_siora/ja/000.jpg").size == (830, 1170)
    assert first.balloons[0].texts == {"ja": "綴じ眼のシオラ", "en": "bound eye siora", "zh": "縫眼的希奧拉"}
    assert first.balloons[0].bbox == (82.0, 952.0, 750.0, 1059.0) and first.balloons[0].panel_id == "p0"


@needs_data
def test_boxes_inside_images(mantra):
    for p in mantra:
        for item in (*p.panels, *p.balloons):
            x1, y1, x2, y2 = item.bbox
            assert 0 <= x1 < x2 <= p.width and 0 <= y1 < y2 <= p.height, (p.page_id, item.id)


@needs_data
def test_language_option_and_capabilities(mantra):
    ja = load_source("openmantra", DATA / "annotation.json", log=BadRecordLog(), language="ja")
    assert ja[0].balloons[0].text == "綴じ眼のシオラ" and ja[0].language == "ja"
    caps = OpenMantraAdapter().capabilities(mantra)
    assert set(caps) == set(TASKS)
    assert {t for t, why in caps.items() if why is None} == {
        "panel_understanding", "dialog_reordering", "panel_reordering"}
    with pytest.raises(ValueError, match="language"):
        OpenMantraAdapter(language="fr")


def test_demo_subset():
    pages = load_source("openmantra", DEMO, log=BadRecordLog())
    assert [p.page_id for p in pages] == [
        "openmantra/tojime_no_siora/014", "openmantra/tojime_no_siora/022",
        "openmantra/balloon_dream/001", "openmantra/balloon_dream/029",
        "openmantra/tencho_isoro/007", "openmantra/tencho_isoro/039",
    ]
    assert all(len(p.panels) >= 3 and p.reading_direction == "rtl" for p in pages)
    assert (DEMO / "LICENSE.md").read_text(encoding="utf-8").startswith("# Creative Commons Attribution-NonCommercial 4.0")


# -- bad input ----------------------------------------------------------------------------------

def _write(tmp: Path, mutate=None, images=("p0.jpg", "p1.jpg")) -> Path:
    (tmp / "images").mkdir(exist_ok=True)
    for n in images:
        Image.new("RGB", (300, 400), "white").save(tmp / "images" / n)
    pages = [
        {"page_index": i, "image_paths": {"ja": f"images/p{i}.jpg"},
         "frame": [{"x": 150, "y": 0, "w": 150, "h": 200}, {"x": 0, "y": 0, "w": 150, "h": 200}],
         "text": [{"x": 160, "y": 10, "w": 50, "h": 80, "text_ja": "あ", "text_en": "a", "text_zh": "啊"},
                  {"x": 10, "y": 10, "w": 50, "h": 80, "text_ja": "い", "text_en": "b", "text_zh": "以"}]}
        for i in range(2)
    ]
    data = [{"book_title": "t", "pages": pages}]
    if mutate:
        mutate(data)
    path = tmp / "annotation.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


BAD = {
    "outside": (lambda d: d[0]["pages"][0]["frame"][1].update(x=250), "t page 0 frame 1", "outside"),
    "inverted": (lambda d: d[0]["pages"][0]["text"][1].update(w=-20), "t page 0 text 1", "inverted"),
    "zero area": (lambda d: d[0]["pages"][0]["text"][1].update(h=0), "t page 0 text 1", "zero area"),
    "missing key": (lambda d: d[0]["pages"][0]["frame"][1].pop("w"), "t page 0 frame 1", "'w'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_box(tmp_path, case):
    mutate, record, reason = BAD[case]
    path = _write(tmp_path, mutate)
    with pytest.raises(AnnotationError) as err:
        load_source("openmantra", path, log=BadRecordLog())
    assert (err.value.file, err.value.record) == (str(path), record) and reason in err.value.reason
    log = BadRecordLog(skip_bad=True)
    pages = load_source("openmantra", path, log=log)
    assert [(r.file, r.record) for r in log.records] == [(str(path), record)]
    p = pages[0]
    if "frame" in record:
        assert [q.id for q in p.panels] == ["p0"] and len(p.balloons) == 2
    else:
        assert [b.id for b in p.balloons] == ["b0"] and len(p.panels) == 2
    assert len(pages) == 2 and len(pages[1].panels) == 2


def test_missing_image_and_duplicated_page(tmp_path):
    path = _write(tmp_path, images=("p0.jpg",))
    with pytest.raises(AnnotationError) as err:
        load_source("openmantra", path, log=BadRecordLog())
    assert err.value.file == str(tmp_path / "images" / "p1.jpg") and err.value.record == "t page 1"
    log = BadRecordLog(skip_bad=True)
    assert [p.page_id for p in load_source("openmantra", path, log=log)] == ["openmantra/t/p0"]
    assert len(log.records) == 1

    path = _write(tmp_path, lambda d: d[0]["pages"].append(copy.deepcopy(d[0]["pages"][0])))
    with pytest.raises(AnnotationError, match="duplicated page id"):
        load_source("openmantra", path, log=BadRecordLog())
    log = BadRecordLog(skip_bad=True)
    assert len(load_source("openmantra", path, log=log)) == 2
    assert [r.record for r in log.records] == ["page openmantra/t/p0"]


@pytest.mark.parametrize("text", ["[{", '{"book_title": "x"}', "[]", "[" * 200_000 + "]" * 200_000])
def test_unusable_file(tmp_path, text):
    path = tmp_path / "annotation.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError) as err:
        load_source("openmantra", tmp_path, log=BadRecordLog())
    assert err.value.file == str(path) and err.value.record == "file"
    log = BadRecordLog(skip_bad=True)
    assert load_source("openmantra", path, log=log) == [] and len(log.records) == 1


def test_image_path_of_the_wrong_type_is_a_bad_record(tmp_path):
    """``image_paths.ja`` a number: a bad record naming the page, not a TypeError traceback."""
    path = _write(tmp_path, lambda d: d[0]["pages"][1]["image_paths"].update(ja=5))
    with pytest.raises(AnnotationError) as err:
        load_source("openmantra", path, log=BadRecordLog())
    assert err.value.record == "t page 1" and "image_paths.ja must be a file name, got 5" in err.value.reason
    log = BadRecordLog(skip_bad=True)
    assert [p.page_id for p in load_source("openmantra", path, log=log)] == ["openmantra/t/p0"]
