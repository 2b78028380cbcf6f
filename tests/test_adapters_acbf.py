"""ACBF adapter on the real Craphound file (shared/data), the demo subset and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from shared_data import SHARED_DATA, needs_shared_data

from ai4va_fg_dataset.adapters import detect_sources, load_source
from ai4va_fg_dataset.adapters.acbf import AcbfAdapter, short_license
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.schema import TASKS

DATA = SHARED_DATA
ACBF = DATA / "craphound" / "craphound-1.1.acbf"
DEMO = Path(__file__).parents[1] / "ai4va_fg_dataset" / "demo_data"
needs_data = needs_shared_data("the complete Craphound ACBF book (every page, counts and layouts)")


@pytest.fixture(scope="module")
def craphound():
    return load_source("acbf", ACBF, log=BadRecordLog()) if ACBF.is_file() else []


def _raw_frames(page_href: str) -> list[str]:
    """Frame ``points`` strings of one page, read from the raw XML text with a regex."""
    text = ACBF.read_text(encoding="utf-8")
    block = re.search(rf'<image href="{page_href}"/>(.*?)</page>', text, re.DOTALL).group(1)
    return re.findall(r'<frame points="([^"]+)"', block)


@needs_data
def test_counts(craphound):
    assert len(craphound) == 23  # the cover is not a <page>
    assert sum(len(p.panels) for p in craphound) == 151
    assert sum(len(p.balloons) for p in craphound) == 273
    assert all(set(b.texts) == {"en", "sk"} for p in craphound for b in p.balloons)  # Slovak layer matched
    assert len({p.page_id for p in craphound}) == 23


@needs_data
def test_sample_values(craphound):
    p = craphound[0]
    assert p.page_id == "acbf/Craphound/page1" and p.book == "Craphound"
    assert (p.width, p.height) == Image.open(DATA / "craphound" / "page1.jpg").size == (1000, 1537)
    assert p.license == "CC BY-NC-SA 3.0 US" and "Cory Doctorow (Writer)" in p.attribution
    assert p.reading_direction == "ltr" and p.language == "en"
    b = p.balloons[0]
    # <a href="#ref_001">[*]</a> dropped, <emphasis> flattened
    assert b.text == "CRAPHOUND HAD WICKED YARD-SALE KARMA FOR A ROTTEN, FILTHY ALIEN BASTARD."
    assert b.texts["sk"].startswith("CRAPHOUND MAL AKO ZHNITÝ")
    assert (b.kind, b.order, b.bbox, b.panel_id) == ("commentary", 0, (63.0, 57.0, 379.0, 97.0), "p0")
    hooo = next(x for x in p.balloons if x.text.startswith("HOOO"))
    assert hooo.kind == "speech" and hooo.text == "HOOO-EEE!"  # no type attribute -> speech
    assert p.panels[3].polygon[:3] == ((545.0, 452.0), (965.0, 452.0), (965.0, 807.0))


@needs_data
def test_panel_order_and_polygons_match_raw_file(craphound):
    for p in craphound:
        raw = _raw_frames(Path(p.image_path).name)
        assert [q.order for q in p.panels] == list(range(len(raw)))
        for panel, points in zip(p.panels, raw):
            pts = [tuple(float(c) for c in xy.split(",")) for xy in points.split()]
            assert panel.polygon == tuple(pts)


@needs_data
def test_boxes_inside_images(craphound):
    for p in craphound:
        for item in (*p.panels, *p.balloons):
            x1, y1, x2, y2 = item.bbox
            assert 0 <= x1 < x2 <= p.width and 0 <= y1 < y2 <= p.height, (p.page_id, item.id)
    page4 = next(p for p in craphound if p.page_id.endswith("/page4"))
    assert page4.panels[1].bbox[2] == page4.width == 994  # a full-bleed frame 6 px past the edge, clipped


@needs_data
def test_slovak_as_primary_language():
    pages = load_source("acbf", ACBF, log=BadRecordLog(), language="sk")
    b = pages[0].balloons[0]
    assert pages[0].language == "sk" and b.text == b.texts["sk"] and b.texts["en"].startswith("CRAPHOUND HAD")


@needs_data
def test_capabilities(craphound):
    adapter = AcbfAdapter()
    caps = adapter.capabilities(craphound)
    assert set(caps) == set(TASKS)
    fed = {t for t, why in caps.items() if why is None}
    assert fed == {"panel_understanding", "dialog_reordering", "panel_reordering"}
    assert "book level" in caps["character_counting"]


def test_demo_subset():
    pages = load_source("acbf", DEMO / "craphound" / "craphound-1.1.acbf", log=BadRecordLog())
    assert [p.page_id for p in pages] == ["acbf/Craphound/page11", "acbf/Craphound/page20", "acbf/Craphound/page21"]
    assert [len(p.panels) for p in pages] == [7, 7, 7]
    assert [len(p.balloons) for p in pages] == [15, 13, 11]
    assert pages[0].license == "CC BY-NC-SA 3.0 US"


@needs_data
def test_demo_subset_equals_full_file(craphound):
    demo = load_source("acbf", DEMO / "craphound", log=BadRecordLog())
    full = {p.page_id: p for p in craphound}
    for p in demo:
        f = full[p.page_id]
        assert (p.panels, p.balloons, p.width, p.height) == (f.panels, f.balloons, f.width, f.height)


def test_detect_sources_demo_and_shared():
    found = detect_sources(DEMO)
    assert [name for name, _ in found] == ["acbf", "mimi-eunice", "openmantra"]
    assert found[0][1] == DEMO / "craphound" / "craphound-1.1.acbf"
    if DATA.is_dir():
        shared = detect_sources(DATA)
        assert [(n, p.relative_to(DATA)) for n, p in shared] == [
            (n, p.relative_to(DEMO)) for n, p in found
        ]


# -- bad input ----------------------------------------------------------------------------------

NS = "http://www.acbf.info/xml/acbf/1.1"


def _acbf(tmp: Path, pages: list[str], *, images=("a.jpg", "b.jpg")) -> Path:
    for name in images:
        Image.new("RGB", (200, 300), "white").save(tmp / name)
    body = "".join(f"<page>{p}</page>" for p in pages)
    path = tmp / "t.acbf"
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?><ACBF xmlns="{NS}"><meta-data><book-info>'
        '<book-title lang="en">Test Book</book-title></book-info><publish-info>'
        "<license>Creative Commons Attribution-ShareAlike 4.0</license></publish-info></meta-data>"
        f"<body>{body}</body></ACBF>",
        encoding="utf-8",
    )
    return path


GOOD_A = (
    '<image href="a.jpg"/><text-layer lang="en"><text-area points="10,10 90,10 90,40 10,40"><p>Hi</p></text-area>'
    '<text-area points="110,10 190,10 190,40 110,40" type="thought"><p>Ho</p><p>hum</p></text-area></text-layer>'
    '<frame points="0,0 100,0 100,150 0,150"/><frame points="100,0 200,0 200,150 100,150"/>'
)
GOOD_B = '<image href="b.jpg"/><frame points="0,0 200,0 200,300 0,300"/>'


def test_small_file_roundtrip(tmp_path):
    pages = load_source("acbf", _acbf(tmp_path, [GOOD_A, GOOD_B]), log=BadRecordLog())
    assert [p.page_id for p in pages] == ["acbf/Test_Book/a", "acbf/Test_Book/b"]
    a = pages[0]
    assert a.license == "CC BY-SA 4.0" and a.book == "Test Book"
    assert [(b.text, b.kind, b.panel_id, b.order) for b in a.balloons] == [
        ("Hi", "speech", "p0", 0), ("Ho hum", "thought", "p1", 1)]


BAD = {
    "frame outside": (GOOD_A.replace("100,150 0,150", "100,450 0,450"), "page a.jpg frame 0", "outside"),
    "degenerate frame": (GOOD_A.replace('"0,0 100,0 100,150 0,150"', '"0,0 50,0 100,0"'),
                         "page a.jpg frame 0", "zero area"),
    "bad points": (GOOD_A.replace('"0,0 100,0 100,150 0,150"', '"0,0 100,x 100,150"'),
                   "page a.jpg frame 0", "cannot parse"),
    "text-area outside": (GOOD_A.replace("90,10 90,40 10,40", "90,10 90,340 10,340"),
                          "page a.jpg text-area 0 (en)", "outside"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_region(tmp_path, case):
    page, record, reason = BAD[case]
    path = _acbf(tmp_path, [page, GOOD_B])
    with pytest.raises(AnnotationError) as err:
        load_source("acbf", path, log=BadRecordLog())
    assert (err.value.file, err.value.record) == (str(path), record) and reason in err.value.reason
    log = BadRecordLog(skip_bad=True)
    pages = load_source("acbf", path, log=log)
    assert [(r.file, r.record) for r in log.records] == [(str(path), record)]
    a = pages[0]
    if "frame" in record:
        assert [q.id for q in a.panels] == ["p1"] and len(a.balloons) == 2
    else:
        assert [b.id for b in a.balloons] == ["b1"] and len(a.panels) == 2
    assert len(pages) == 2


def test_missing_image_and_duplicated_page(tmp_path):
    path = _acbf(tmp_path, [GOOD_A, GOOD_B], images=("a.jpg",))
    with pytest.raises(AnnotationError) as err:
        load_source("acbf", path, log=BadRecordLog())
    assert err.value.file == str(tmp_path / "b.jpg") and err.value.record == "page 2 (b.jpg)"
    log = BadRecordLog(skip_bad=True)
    assert [p.page_id for p in load_source("acbf", path, log=log)] == ["acbf/Test_Book/a"]
    assert len(log.records) == 1

    path = _acbf(tmp_path, [GOOD_A, GOOD_B, GOOD_A])
    with pytest.raises(AnnotationError, match="duplicated page id"):
        load_source("acbf", path, log=BadRecordLog())
    log = BadRecordLog(skip_bad=True)
    assert [p.page_id for p in load_source("acbf", path, log=log)] == ["acbf/Test_Book/a", "acbf/Test_Book/b"]
    assert [r.record for r in log.records] == ["page acbf/Test_Book/a"]


@pytest.mark.parametrize("text", ["<ACBF><body><page>", "<comic/>"])
def test_unusable_file(tmp_path, text):
    path = tmp_path / "x.acbf"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError) as err:
        load_source("acbf", path, log=BadRecordLog())
    assert err.value.file == str(path) and err.value.record == "file"
    log = BadRecordLog(skip_bad=True)
    assert load_source("acbf", path, log=log) == [] and len(log.records) == 1


def test_short_license():
    assert short_license("Creative Commons Attribution-NonCommercial-ShareAlike 3.0 United States") == (
        "CC BY-NC-SA 3.0 US")
    assert short_license("Public domain") == "Public domain"
