"""Marks drawn on page images, checked pixel by pixel."""

from __future__ import annotations

import pytest
from PIL import Image

from ai4va_fg_dataset.marks import (
    blank_region,
    draw_marks,
    line_width,
    marker_position,
    marker_radius,
)
from ai4va_fg_dataset.schema import BOX_COLOR, MARKER_COLOR

GREY = (128, 128, 128)


def _page(w=400, h=600):
    return Image.new("RGB", (w, h), GREY)


def test_blue_box_outline_pixels_and_original_untouched():
    page = _page()
    out = draw_marks(page, boxes=[(100, 200, 300, 400)])
    lw = line_width(page.size)
    assert lw == 2
    # outline on all four sides, inside the box
    for xy in [(100, 300), (101, 300), (299, 300), (200, 200), (200, 399)]:
        assert out.getpixel(xy) == BOX_COLOR, xy
    # interior and outside untouched
    for xy in [(200, 300), (100 + lw, 300), (99, 300), (300, 300), (200, 400)]:
        assert out.getpixel(xy) == GREY, xy
    assert page.getpixel((100, 300)) == GREY  # input not modified
    assert out is not page and out.size == page.size


def test_line_width_scales_with_image():
    big = draw_marks(_page(2000, 3000), boxes=[(100, 100, 1000, 1000)])
    lw = line_width(big.size)
    assert lw == 10
    assert big.getpixel((100 + lw - 1, 500)) == BOX_COLOR
    assert big.getpixel((100 + lw, 500)) == GREY


def test_marker_is_filled_orange_disc_with_label():
    page = _page()
    r = marker_radius(page.size)
    assert r == 10
    out = draw_marks(page, markers=[(50, 60), (200, 300)], labels=["1", "2"])
    for cx, cy in [(50, 60), (200, 300)]:
        # a ring just inside the disc edge is orange (the label sits in the middle)
        for dx, dy in [(r - 2, 0), (-(r - 2), 0), (0, r - 2), (0, -(r - 2))]:
            assert out.getpixel((cx + dx, cy + dy)) == MARKER_COLOR
        assert out.getpixel((cx + r + 2, cy)) == GREY
        # the label is drawn: white glyph pixels inside the disc
        patch = [out.getpixel((cx + dx, cy + dy)) for dx in range(-r // 2, r // 2) for dy in range(-r // 2, r // 2)]
        assert any(min(p) >= 240 for p in patch)  # white (anti-aliased) glyph pixels
    # different labels give different pixels
    one = draw_marks(page, markers=[(200, 300)], labels=["1"]).crop((190, 290, 210, 310))
    two = draw_marks(page, markers=[(200, 300)], labels=["2"]).crop((190, 290, 210, 310))
    assert one.tobytes() != two.tobytes()


def test_box_label_tag_is_blue_with_text():
    out = draw_marks(_page(), boxes=[(100, 200, 300, 400)], box_labels=["1"])
    tag = [out.getpixel((x, y)) for x in range(100, 120) for y in range(200, 220)]
    assert BOX_COLOR in tag and any(min(p) >= 240 for p in tag)


def test_marker_position_inside_box_corner_and_image():
    size = (400, 600)
    r = marker_radius(size)
    assert marker_position((100, 200, 300, 400), size) == (100 + r, 200 + r)
    # a box touching the image corner: marker stays inside the image
    assert marker_position((-5, -5, 50, 50), size) == (r, r)
    assert marker_position((395, 595, 400, 600), size) == (400 - r, 600 - r)
    assert marker_position((100, 200, 300, 400), size, "top") == (200, 200 + r)
    assert marker_position((100, 200, 300, 400), size, "center") == (200, 300)
    with pytest.raises(ValueError, match="'middle'"):
        marker_position((100, 200, 300, 400), size, "middle")


def test_label_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="1 labels for 2 markers"):
        draw_marks(_page(), markers=[(1, 1), (2, 2)], labels=["1"])
    with pytest.raises(ValueError, match="2 box labels for 1 boxes"):
        draw_marks(_page(), boxes=[(1, 1, 5, 5)], box_labels=["1", "2"])


def test_blank_region_is_white_only_inside():
    page = _page().convert("L")
    out = blank_region(page, (10, 20, 30, 40))
    assert out.mode == "RGB"
    assert out.getpixel((10, 20)) == (255, 255, 255) and out.getpixel((29, 39)) == (255, 255, 255)
    assert out.getpixel((30, 39)) == GREY and out.getpixel((9, 20)) == GREY


def test_blank_region_polygon_spares_the_rest_of_the_box():
    out = blank_region(_page(), (0, 0, 100, 100), polygon=[(0, 0), (100, 0), (0, 100)])
    assert out.getpixel((10, 10)) == (255, 255, 255)
    assert out.getpixel((90, 90)) == GREY
