"""Geometry: box parsing/validation, IoU, coverage, matching, scaling and crops (hand-computed)."""

import math

import pytest
from PIL import Image

from ai4va_fg_dataset.core import geometry as g


def test_as_bbox_accepts_and_converts():
    assert g.as_bbox([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    assert g.xywh_to_xyxy([10, 20, 30, 40]) == (10.0, 20.0, 40.0, 60.0)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ([1, 2, 3], "has 3 values"),
        ([1, 2, float("nan"), 4], "non-finite"),
        ([5, 5, 1, 9], "inverted or has zero area"),
        ([5, 5, 5, 9], "inverted or has zero area"),
        (["a", 1, 2, 3], "not 4 numbers"),
    ],
)
def test_as_bbox_rejects_with_the_value_and_place(bad, fragment):
    with pytest.raises(g.GeometryError) as err:
        g.as_bbox(bad, where="ann 7")
    assert fragment in str(err.value) and "ann 7" in str(err.value)


def test_xywh_zero_width_is_rejected():
    with pytest.raises(g.GeometryError, match="zero area"):
        g.xywh_to_xyxy([10, 10, 0, 5])


def test_polygons_parse_and_degenerate_ones_fail():
    poly = g.parse_points("0,0 10,0 10,5 0,5")
    assert g.polygon_area(poly) == 50.0
    assert g.polygon_bbox(poly) == (0.0, 0.0, 10.0, 5.0)
    assert g.polygon_from_flat([0, 0, 4, 0, 4, 4]) == ((0.0, 0.0), (4.0, 0.0), (4.0, 4.0))
    with pytest.raises(g.GeometryError, match="zero area"):
        g.parse_points("0,0 5,5 10,10")  # collinear
    with pytest.raises(g.GeometryError, match="at least 3"):
        g.polygon_from_flat([0, 0, 1, 1])
    with pytest.raises(g.GeometryError, match="odd number"):
        g.polygon_from_flat([0, 0, 1])
    with pytest.raises(g.GeometryError, match="cannot parse"):
        g.parse_points("0,0 a,b 3,3")


def test_check_inside_clips_small_overshoot_and_rejects_large():
    assert g.check_inside((-1, 0, 101, 50), 100, 50) == (0.0, 0.0, 100.0, 50.0)
    with pytest.raises(g.GeometryError, match="outside the 100x50 image"):
        g.check_inside((0, 0, 120, 50), 100, 50, where="frame 2")


def test_iou_and_coverage_hand_computed():
    a, b = (0, 0, 10, 10), (5, 0, 15, 10)
    assert g.intersection(a, b) == 50
    assert g.iou(a, b) == pytest.approx(50 / 150)
    assert g.iou(a, a) == 1.0
    assert g.iou(a, (20, 20, 30, 30)) == 0.0
    # crop covers the right half of the target: 50% coverage, IoU 1/3
    assert g.coverage(b, a) == pytest.approx(0.5)
    assert g.coverage((0, 0, 100, 100), a) == 1.0


def test_match_boxes_is_one_to_one():
    gt = [(0, 0, 10, 10), (20, 0, 30, 10)]
    # two crops of the same GT region: only one may match it
    pairs = g.match_boxes([(0, 0, 10, 10), (0, 0, 10, 10)], gt)
    ious = sorted(p[2] for p in pairs)
    assert ious == [0.0, 1.0]
    # crossed order is resolved optimally
    pairs = g.match_boxes([(20, 0, 30, 10), (0, 0, 10, 10)], gt)
    assert sorted((p, q) for p, q, _ in pairs) == [(0, 1), (1, 0)]
    assert all(v == 1.0 for *_, v in pairs)
    assert g.match_boxes([], gt) == [] and g.match_boxes([(0, 0, 1, 1)], []) == []


def test_scale_and_clip():
    assert g.scale_bbox((10, 20, 30, 40), (100, 200), (200, 100)) == (20.0, 10.0, 60.0, 20.0)
    assert g.clip_bbox((-5, -5, 50, 50), 20, 30) == (0.0, 0.0, 20.0, 30.0)
    assert g.clip_bbox((25, 0, 50, 10), 20, 30) is None


def test_crop_image_is_pixel_exact():
    img = Image.new("RGB", (40, 30))
    for x in range(40):
        for y in range(30):
            img.putpixel((x, y), (x, y, 0))
    crop = g.crop_image(img, (10.4, 5.0, 20.0, 15.6))
    assert crop.size == (10, 11)  # rounded outward: x 10..20, y 5..16
    assert crop.getpixel((0, 0)) == (10, 5, 0)
    assert crop.getpixel((9, 10)) == (19, 15, 0)
    with pytest.raises(g.GeometryError, match="does not overlap"):
        g.crop_image(img, (50, 50, 60, 60))


def test_union_and_center():
    assert g.union_bbox([(0, 5, 2, 6), (1, 0, 4, 3)]) == (0, 0, 4, 6)
    assert g.center((0, 0, 4, 6)) == (2.0, 3.0)
    assert math.isclose(g.area((0, 0, 4, 6)), 24)
