"""Panel reading order on synthetic layouts and on the annotated orders of real comics.

Real layouts (see /work/shared/data/README.md): Craphound (ACBF) lists frames in the annotator's
reading order, left to right, with column layouts on pages 1, 11, 12, 15, 22, 23; OpenMantra lists
frames right to left in rows. The raw files are parsed here so the test does not depend on the
adapters.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from shared_data import DEMO_DATA, SHARED_DATA, needs_shared_data

from ai4va_fg_dataset.reading_order import describe_positions, reading_order, reading_rows

DATA = SHARED_DATA
ACBF_NS = {"a": "http://www.acbf.info/xml/acbf/1.1"}


def _craphound_pages(data: Path = DATA) -> list[tuple[str, list[tuple[float, float, float, float]]]]:
    root = ET.parse(data / "craphound" / "craphound-1.1.acbf").getroot()
    pages = []
    for page in root.iter(f"{{{ACBF_NS['a']}}}page"):
        name = page.find("a:image", ACBF_NS).get("href")
        boxes = []
        for frame in page.findall("a:frame", ACBF_NS):
            pts = [tuple(float(c) for c in p.split(",")) for p in frame.get("points").split()]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        pages.append((name, boxes))
    return pages


def _openmantra_pages(data: Path = DATA) -> list[tuple[str, list[tuple[float, float, float, float]]]]:
    books = json.loads((data / "open-mantra" / "annotation.json").read_text())
    return [
        (
            f"{book['book_title']}/{page['page_index']}",
            [(f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"]) for f in page["frame"]],
        )
        for book in books
        for page in book["pages"]
    ]


needs_data = needs_shared_data("reading order against every annotated page of Craphound and OpenMantra")


# --- synthetic layouts ------------------------------------------------------------------------

GRID = [(0, 0, 100, 100), (110, 0, 200, 100), (0, 110, 100, 200), (110, 110, 200, 200)]


def test_grid_ltr_and_rtl():
    shuffled = [GRID[3], GRID[0], GRID[2], GRID[1]]
    assert [shuffled[i] for i in reading_order(shuffled, "ltr")] == GRID
    assert [shuffled[i] for i in reading_order(shuffled, "rtl")] == [GRID[1], GRID[0], GRID[3], GRID[2]]


def test_tall_panel_beside_stacked_ones():
    # tall panel on the left, two stacked on the right: tall, upper right, lower right
    boxes = [(110, 0, 200, 45), (0, 0, 100, 100), (110, 55, 200, 100)]
    assert reading_order(boxes, "ltr") == [1, 0, 2]
    # manga: the stacked column (right) first, then the tall panel
    assert reading_order(boxes, "rtl") == [0, 2, 1]


def test_columns_with_unaligned_rows_read_column_by_column():
    left = [(0, 0, 100, 90), (0, 100, 100, 250), (0, 260, 100, 400)]
    right = [(110, 0, 200, 170), (110, 180, 200, 400)]
    boxes = right + left
    assert reading_order(boxes, "ltr") == [2, 3, 4, 0, 1]
    assert reading_order(boxes, "rtl") == [0, 1, 2, 3, 4]


def test_thin_sliver_over_the_bottom_of_a_panel_is_read_after_it():
    # boureisougi 31: a thin panel overlapping the bottom edge of the top panel has no clean gutter;
    # the fallback's same-band test, measured against the sliver alone, read it first.
    top, bottom_l, bottom_r = (0, 0, 1000, 500), (0, 540, 500, 1000), (500, 540, 1000, 1000)
    left_sliver, right_sliver = (50, 460, 400, 520), (600, 460, 950, 520)
    assert reading_order([left_sliver, top, bottom_r, bottom_l], "ltr") == [1, 0, 3, 2]
    assert reading_order([right_sliver, top, bottom_l, bottom_r], "rtl") == [1, 0, 3, 2]


def test_slightly_overlapping_rows_stay_rows():
    # second row's right panel pokes 30 px into the first row (a break-out outline)
    boxes = [(0, 0, 100, 200), (110, 0, 200, 200), (0, 210, 100, 400), (110, 170, 200, 400)]
    assert reading_order(boxes) == [0, 1, 2, 3]


def test_inset_is_read_after_its_container():
    boxes = [(150, 10, 190, 50), (0, 0, 200, 300), (0, 310, 200, 400)]
    assert reading_order(boxes) == [1, 0, 2]


def test_reading_order_is_a_permutation_and_rejects_bad_direction():
    assert reading_order([]) == []
    assert reading_order([(0, 0, 5, 5)]) == [0]
    with pytest.raises(ValueError, match="'up'"):
        reading_order(GRID, "up")  # type: ignore[arg-type]


def test_describe_positions():
    boxes = [
        (0, 0, 100, 100), (110, 0, 200, 100),  # top row: two panels
        (0, 110, 60, 300), (70, 110, 200, 200), (70, 210, 200, 300),  # middle: tall + 2 stacked
        (0, 310, 200, 400),  # bottom: one panel
    ]
    assert describe_positions(boxes) == [
        "the left panel of the top row",
        "the right panel of the top row",
        "the first panel of the middle row",
        "the second panel of the middle row",
        "the third panel of the middle row",
        "the only panel of the bottom row",
    ]
    # rtl: counted from the right; left/right stay positional
    rtl = describe_positions(boxes, "rtl")
    assert rtl[0] == "the left panel of the top row"
    assert rtl[3] == "the first panel of the middle row"
    assert rtl[2] == "the third panel of the middle row"
    assert describe_positions([(0, 0, 10, 10)]) == ["the only panel of the page"]
    four_rows = [(0, y, 100, y + 90) for y in (0, 100, 200, 300)]
    assert describe_positions(four_rows) == [
        "the only panel of the top row",
        "the only panel of the second row",
        "the only panel of the third row",
        "the only panel of the bottom row",
    ]
    assert [len(r) for r in reading_rows(boxes)] == [2, 3, 1]


# --- real annotated layouts ------------------------------------------------------------------


def test_demo_pages_reading_order_matches_annotations():
    """The embedded pages (3 Craphound ltr, 6 OpenMantra rtl) are read in their annotated order, but for
    one inspected ambiguous page (see OPENMANTRA_AMBIGUOUS)."""
    craphound = [(n, b) for n, b in _craphound_pages(DEMO_DATA) if len(b) >= 2]
    mantra = [(n, b) for n, b in _openmantra_pages(DEMO_DATA) if len(b) >= 2]
    assert (len(craphound), len(mantra)) == (3, 6)
    assert {n: reading_order(b, "ltr") for n, b in craphound if reading_order(b, "ltr") != list(range(len(b)))} == {}
    wrong = {n for n, b in mantra if reading_order(b, "rtl") != list(range(len(b)))}
    assert wrong == {"tencho_isoro/40"} <= OPENMANTRA_AMBIGUOUS  # two panels overlapping both ways
    # the irregular page11 (left column read before the right one) is not row-major
    page11 = dict(craphound)["page11.jpg"]
    rows = sorted(range(len(page11)), key=lambda i: (page11[i][1], page11[i][0]))
    assert rows != list(range(len(page11)))


@needs_data
def test_craphound_reading_order_matches_every_page():
    pages = [(n, b) for n, b in _craphound_pages() if len(b) >= 2]
    assert len(pages) == 23
    wrong = {n: reading_order(b, "ltr") for n, b in pages if reading_order(b, "ltr") != list(range(len(b)))}
    assert wrong == {}
    # the irregular pages named in the data README are among those checked
    names = {n for n, _ in pages}
    assert {f"page{k}.jpg" for k in (1, 11, 12, 15, 22, 23)} <= names


# Pages whose annotated order we do not reproduce; each was inspected (panels drawn on the page):
# heavily overlapping panels where the annotation reads a middle panel before the rightmost one
# (13, 43, 45 of tojime_no_siora), the left column before the right (tojime_no_siora/33,
# balloon_dream/35), a lower panel before the one above it (balloon_dream/8), a 21-px-wide strip
# inside a panel (tencho_isoro/37) and two panels overlapping both ways (tencho_isoro/40).
OPENMANTRA_AMBIGUOUS = {
    "tojime_no_siora/13", "tojime_no_siora/33", "tojime_no_siora/43", "tojime_no_siora/45",
    "balloon_dream/8", "balloon_dream/35", "tencho_isoro/37", "tencho_isoro/40",
}


@needs_data
def test_openmantra_right_to_left_order_matches_annotations():
    pages = [(n, b) for n, b in _openmantra_pages() if len(b) >= 2]
    assert len(pages) == 120
    wrong = {n for n, b in pages if reading_order(b, "rtl") != list(range(len(b)))}
    agreement = 1 - len(wrong) / len(pages)
    assert agreement >= 0.93, (agreement, sorted(wrong))
    assert wrong <= OPENMANTRA_AMBIGUOUS, sorted(wrong - OPENMANTRA_AMBIGUOUS)
    # left-to-right reading of the same pages disagrees on most multi-column pages
    ltr_right = sum(reading_order(b, "ltr") == list(range(len(b))) for _, b in pages)
    assert ltr_right < len(pages) - len(wrong) - 50
