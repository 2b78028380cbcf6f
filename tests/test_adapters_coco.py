"""AI4VA / generic COCO adapter: a small AI4VA-schema COCO file written here, plus bad input."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from ai4va_fg_dataset.adapters import ADAPTERS, detect_sources, load_source
from ai4va_fg_dataset.adapters.coco import AI4VAAdapter, CocoAdapter, CocoMapping
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.schema import TASKS

W, H = 400, 600


def _panel(aid, x, y, w, h, **attrs):
    return {"id": aid, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h],
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], "area": w * h, "iscrowd": 0,
            "attributes": attrs}


def _char(aid, x, y, w, h, image_id=1, **attrs):
    return {"id": aid, "image_id": image_id, "category_id": 2, "bbox": [x, y, w, h],
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], "area": w * h, "iscrowd": 0,
            "attributes": attrs}


def _rle(x1, y1, x2, y2) -> dict:
    """Compressed COCO RLE of a rectangle, JSON-ready."""
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def ai4va_dict() -> dict:
    """Two pages: page1 with 3 panels, 4 characters, 1 object, 2 balloons; page2 with 1 character."""
    anns = [
        _panel(1, 0, 0, 400, 200, Order=0),
        _panel(2, 0, 200, 200, 400, Order=1),
        _panel(3, 200, 200, 200, 400, Order=2),
        _char(10, 20, 20, 100, 150, Identity="placid", Intradepth=1, Interdepth=2, Pose="running"),
        _char(11, 200, 30, 80, 120, Identity="muzo", Intradepth=2, Interdepth=1, Pose="sitting"),
        _char(12, 20, 250, 100, 200, Identity="placid", Intradepth=1, Interdepth=1, Pose="jumping"),
        _char(13, 250, 300, 100, 200, Identity="muzo", Intradepth=3, Interdepth=1, Pose="talking"),
        # RLE segmentation and no "bbox": the box comes from the mask (pycocotools)
        {"id": 14, "image_id": 1, "category_id": 3, "area": 2500, "iscrowd": 0,
         "segmentation": _rle(300, 50, 350, 100), "attributes": {"Intradepth": 4}},
        {"id": 20, "image_id": 1, "category_id": 4, "bbox": [210, 210, 100, 40], "area": 4000, "iscrowd": 0,
         "segmentation": [[210, 210, 310, 210, 310, 250, 210, 250]],
         "attributes": {"Text": "Second!", "Order": 1, "Speaker": 13}},
        {"id": 21, "image_id": 1, "category_id": 4, "bbox": [10, 210, 100, 40], "area": 4000, "iscrowd": 0,
         # two polygons: the larger one is kept as the outline
         "segmentation": [[10, 210, 20, 210, 20, 220], [10, 210, 110, 210, 110, 250, 10, 250]],
         "attributes": {"Text": "First!", "Order": 0}},
        _char(30, 10, 10, 50, 50, image_id=2, Identity="placid", Intradepth=1),
    ]
    return {
        "info": {"description": "test AI4VA-schema file", "contributor": "unit test"},
        "licenses": [{"id": 1, "name": "CC0 1.0", "url": ""}],
        "images": [
            {"id": 1, "file_name": "page1.png", "width": W, "height": H, "license": 1},
            {"id": 2, "file_name": "page2.png", "width": W, "height": H, "license": 1},
        ],
        "categories": [
            {"id": 1, "name": "panel"},
            {"id": 2, "name": "character"},
            {"id": 3, "name": "object"},
            {"id": 4, "name": "speech balloon"},
        ],
        "annotations": anns,
    }


def write(tmp: Path, data: dict, *, images=("page1.png", "page2.png"), sub: str = "", name="ai4va.json") -> Path:
    img_dir = tmp / sub if sub else tmp
    img_dir.mkdir(parents=True, exist_ok=True)
    for n in images:
        Image.new("RGB", (W, H), "white").save(img_dir / n)
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_loads_every_field(tmp_path):
    path = write(tmp_path, ai4va_dict())
    log = BadRecordLog()
    pages = load_source("ai4va", path, log=log)
    assert log.records == []
    assert [p.page_id for p in pages] == ["ai4va/ai4va/page1", "ai4va/ai4va/page2"]
    p = pages[0]
    assert (p.width, p.height, p.source, p.license, p.attribution) == (W, H, "ai4va", "CC0 1.0", "unit test")
    assert [x.id for x in p.panels] == ["p1", "p2", "p3"] and [x.order for x in p.panels] == [0, 1, 2]
    assert p.panels[1].bbox == (0.0, 200.0, 200.0, 600.0)
    assert p.panels[1].polygon == ((0.0, 200.0), (200.0, 200.0), (200.0, 600.0), (0.0, 600.0))
    chars = {e.id: e for e in p.characters}
    assert set(chars) == {"e10", "e11", "e12", "e13"}
    c = chars["e10"]
    assert (c.identity, c.depth, c.pose, c.panel_id, c.kind) == ("placid", 1.0, "running", "p1", "character")
    assert c.bbox == (20.0, 20.0, 120.0, 170.0)
    assert c.attributes == {"Identity": "placid", "Intradepth": 1, "Interdepth": 2, "Pose": "running"}
    assert chars["e13"].panel_id == "p3" and chars["e12"].panel_id == "p2"
    obj = [e for e in p.entities if e.kind == "object"]
    assert len(obj) == 1 and obj[0].bbox == (300.0, 50.0, 350.0, 100.0) and obj[0].polygon is None
    assert obj[0].depth == 4.0
    balloons = {b.id: b for b in p.balloons}
    assert balloons["b21"].text == "First!" and balloons["b21"].order == 0 and balloons["b21"].panel_id == "p2"
    assert balloons["b21"].polygon == ((10.0, 210.0), (110.0, 210.0), (110.0, 250.0), (10.0, 250.0))
    assert balloons["b20"].texts == {"und": "Second!"} and balloons["b20"].panel_id == "p3"
    assert balloons["b20"].speaker_id == "e13" and balloons["b21"].speaker_id is None  # CocoMapping.speaker
    assert pages[1].characters[0].panel_id is None and pages[1].panels == ()


def test_capabilities_follow_content(tmp_path):
    path = write(tmp_path, ai4va_dict())
    adapter = AI4VAAdapter()
    pages = adapter.load(path, log=BadRecordLog())
    caps = adapter.capabilities(pages)
    assert set(caps) == set(TASKS) and set(adapter.feeds) == set(TASKS)
    # The fixture page has two ordered balloons; Dialog Reordering's generator needs three, and the
    # capability is the generator's own check (it once said "fed" here and the build made nothing).
    from ai4va_fg_dataset.tasks import make_generator

    assert caps.pop("dialog_reordering") == f"no page: {make_generator('dialog_reordering').why_not(pages[0])}"
    assert all(v is None for v in caps.values()), caps
    # Strip identities, poses and depths: the character tasks are no longer fed, with a reason.
    data = ai4va_dict()
    for a in data["annotations"]:
        a["attributes"] = {k: v for k, v in a["attributes"].items() if k in ("Text", "Order")}
    pages = adapter.load(write(tmp_path / "bare", data), log=BadRecordLog())
    caps = adapter.capabilities(pages)
    for task in ("action_recognition", "depth_comparison", "character_identification", "character_counting"):
        assert isinstance(caps[task], str) and caps[task], task
    assert caps["panel_reordering"] is None


def test_images_subfolder_image_root_and_source_name(tmp_path):
    path = write(tmp_path, ai4va_dict(), sub="images")
    pages = load_source("coco", path, log=BadRecordLog(), source_name="synthetic", book="demo")
    assert pages[0].image_path == str(tmp_path / "images" / "page1.png")
    assert pages[0].page_id == "synthetic/demo/page1" and pages[0].source == "synthetic"
    other = tmp_path / "elsewhere"
    write(other, {})  # only makes the images
    pages = CocoAdapter(image_root=other).load(path, log=BadRecordLog())
    assert pages[0].image_path == str(other / "page1.png")


def test_custom_mapping_from_dict(tmp_path):
    data = ai4va_dict()
    data["categories"][1]["name"] = "Figure"
    for a in data["annotations"]:
        if "Identity" in a["attributes"]:
            a["attributes"]["who"] = a["attributes"].pop("Identity")
    path = write(tmp_path, data)
    mapping = {"character": ["figure"], "identity": ["who"], "reading_direction": "rtl", "language": "fr"}
    pages = load_source("coco", path, log=BadRecordLog(), mapping=mapping)
    assert {e.identity for e in pages[0].characters} == {"placid", "muzo"}
    assert pages[0].reading_direction == "rtl" and pages[0].balloons[0].texts.keys() == {"fr"}
    with pytest.raises(ValueError, match="unknown CocoMapping fields"):
        CocoMapping.from_dict({"charcter": ["x"]})


def _bad_case(tmp_path, mutate, *, images=("page1.png", "page2.png")):
    data = copy.deepcopy(ai4va_dict())
    mutate(data)
    return write(tmp_path, data, images=images)


def _ann(data, aid):
    return next(a for a in data["annotations"] if a["id"] == aid)


BAD = {
    "unknown category": (lambda d: d["categories"].append({"id": 9, "name": "tail"})
                         or _ann(d, 11).update(category_id=9), "annotation id=11", "unknown category 'tail'"),
    "outside": (lambda d: _ann(d, 11).update(bbox=[350, 30, 200, 120]), "annotation id=11", "outside"),
    "inverted": (lambda d: _ann(d, 11).update(bbox=[200, 30, -80, 120]), "annotation id=11", "inverted"),
    "zero area": (lambda d: _ann(d, 11).update(bbox=[200, 30, 0, 120]), "annotation id=11", "zero area"),
    "nan": (lambda d: _ann(d, 11).update(bbox=[float("nan"), 30, 80, 120]), "annotation id=11", "non-finite"),
    "degenerate polygon": (lambda d: _ann(d, 11).update(segmentation=[[200, 30, 250, 30, 280, 30]]),
                           "annotation id=11", "zero area"),
    "depth not a number": (lambda d: _ann(d, 11)["attributes"].update(Intradepth="far"), "annotation id=11",
                           "not a finite number"),
    "duplicated annotation id": (lambda d: d["annotations"].append(copy.deepcopy(_ann(d, 11))),
                                 "annotation id=11", "duplicated annotation id"),
    "unknown image": (lambda d: _ann(d, 11).update(image_id=77), "annotation id=11", "not in 'images'"),
    # values of the wrong JSON type: bad records, never a traceback or a silently misread value
    "bbox a string": (lambda d: _ann(d, 11).update(bbox="1234"), "annotation id=11",
                      "bbox must be a list of 4 numbers [x, y, w, h], got '1234'"),
    "bbox of booleans": (lambda d: _ann(d, 11).update(bbox=[True, True, True, True]), "annotation id=11",
                         "bbox must be a list of 4 numbers"),
    "segmentation of strings": (lambda d: _ann(d, 11).update(segmentation=[["200", "30", "280", "30", "280", "150"]]),
                                "annotation id=11", "segmentation must be lists of numbers"),
    "image_id a list": (lambda d: _ann(d, 11).update(image_id=[1]), "annotation #4",
                        "'image_id' must be an integer or a string, got [1]"),
    "category_id a dict": (lambda d: _ann(d, 11).update(category_id={"id": 2}), "annotation #4",
                           "'category_id' must be an integer or a string"),
    "id a float": (lambda d: _ann(d, 11).update(id=11.5), "annotation #4", "'id' must be an integer or a string"),
}


def _strict_then_skip(path, record, reason):
    """Strict loading raises on exactly ``record``; with ``skip_bad`` it is the one logged record. Returns the pages."""
    with pytest.raises(AnnotationError) as err:
        load_source("ai4va", path, log=BadRecordLog())
    assert err.value.file == str(path) and err.value.record == record and reason in err.value.reason
    log = BadRecordLog(skip_bad=True)
    pages = load_source("ai4va", path, log=log)
    assert [(r.file, r.record) for r in log.records] == [(str(path), record)]
    return pages


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotation_strict_and_skip(tmp_path, case):
    mutate, record, reason = BAD[case]
    path = _bad_case(tmp_path, mutate)
    pages = _strict_then_skip(path, record, reason)
    ids = {e.id for e in pages[0].entities}
    # exactly the bad record is gone; a duplicated id keeps its first occurrence
    assert ids == ({"e10", "e11", "e12", "e13", "e14"} if "duplicated" in case else {"e10", "e12", "e13", "e14"})
    assert len(pages) == 2 and len(pages[0].panels) == 3 and len(pages[0].balloons) == 2


def test_ignored_category_is_not_an_error(tmp_path):
    def mutate(d):
        d["categories"].append({"id": 9, "name": "Tail"})
        _ann(d, 11).update(category_id=9)

    path = _bad_case(tmp_path, mutate)
    log = BadRecordLog()
    pages = load_source("ai4va", path, log=log, mapping=CocoMapping(ignore_categories={"tail"}))
    assert log.records == [] and {e.id for e in pages[0].entities} == {"e10", "e12", "e13", "e14"}


@pytest.mark.parametrize(
    "case",
    ["missing image", "size mismatch", "duplicated image id", "duplicated file name"],
)
def test_bad_page_strict_and_skip(tmp_path, case):
    images = ("page1.png", "page2.png")
    if case == "missing image":
        images = ("page1.png",)
        mutate = lambda d: None
        file, record = "page2.png", "image id=2 (page2.png)"
    elif case == "size mismatch":
        mutate = lambda d: d["images"][1].update(width=W * 2)
        file, record = "ai4va.json", "image id=2 (page2.png)"
    elif case == "duplicated image id":
        mutate = lambda d: d["images"].append({"id": 2, "file_name": "page3.png"})
        file, record = "ai4va.json", "image id=2"
    else:
        mutate = lambda d: d["images"].append({"id": 3, "file_name": "page2.png"})
        file, record = "ai4va.json", "page ai4va/ai4va/page2"
    path = _bad_case(tmp_path, mutate, images=images)
    with pytest.raises(AnnotationError) as err:
        load_source("ai4va", path, log=BadRecordLog())
    assert err.value.file == str(tmp_path / file) and err.value.record == record
    log = BadRecordLog(skip_bad=True)
    pages = load_source("ai4va", path, log=log)
    assert [(r.file, r.record) for r in log.records] == [(str(tmp_path / file), record)]
    expected = ["ai4va/ai4va/page1"] if case in ("missing image", "size mismatch") else [
        "ai4va/ai4va/page1", "ai4va/ai4va/page2"]
    assert [p.page_id for p in pages] == expected


@pytest.mark.parametrize(
    "case, record, reason",
    [
        ({"categories": {"id": 9}}, "category #{n}", "needs 'id' and 'name'"),
        ({"categories": {"id": 1, "name": "Other"}}, "category id=1", "duplicated category id"),
        ({"images": {"id": 3, "file_name": ""}}, "image #{n}", "needs 'id' and 'file_name'"),
        ({"images": {"file_name": "page3.png"}}, "image #{n}", "needs 'id' and 'file_name'"),
        ({"images": {"id": [3], "file_name": "page3.png"}}, "image #{n}", "'id' must be an integer or a string"),
        ({"images": {"id": 3, "file_name": 5}}, "image #{n}", "'file_name' a string"),
        ({"categories": {"id": {"x": 9}, "name": "tail"}}, "category #{n}", "'id' must be an integer or a string"),
        ({"categories": {"id": 9, "name": ["panel"]}}, "category #{n}", "'name' a string"),
        ({"licenses": {"id": [1], "name": "CC0"}}, "license #{n}", "needs an integer or string 'id'"),
    ],
)
def test_bad_category_or_image_record(tmp_path, case, record, reason):
    ((key, rec),) = case.items()
    n = {}

    def mutate(d):
        n["n"] = len(d[key])
        d[key].append(rec)

    path = _bad_case(tmp_path, mutate)
    record = record.format(**n)
    pages = _strict_then_skip(path, record, reason)
    # only the bad record is skipped: a repeated category id keeps the first category, pages are unchanged
    assert [p.page_id for p in pages] == ["ai4va/ai4va/page1", "ai4va/ai4va/page2"]
    assert len(pages[0].panels) == 3 and len(pages[0].entities) == 5


@pytest.mark.parametrize("text", ["{not json", "[1, 2, 3]", '{"images": []}', "", "[" * 200_000 + "]" * 200_000])
def test_unusable_file(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError) as err:
        load_source("coco", path, log=BadRecordLog())
    assert err.value.file == str(path) and err.value.record == "file"
    log = BadRecordLog(skip_bad=True)
    assert load_source("coco", path, log=log) == [] and len(log.records) == 1


def test_detect_coco_vs_ai4va(tmp_path):
    write(tmp_path / "a", ai4va_dict())
    plain = ai4va_dict()
    plain["info"] = {"description": "a comic in COCO form"}
    for a in plain["annotations"]:
        a["attributes"] = {}
    write(tmp_path / "b", plain, name="plain.json")
    (tmp_path / "b" / "notes.json").write_text('{"hello": 1}')
    found = detect_sources(tmp_path)
    assert found == [("ai4va", tmp_path / "a" / "ai4va.json"), ("coco", tmp_path / "b" / "plain.json")]
    assert set(ADAPTERS) == {"ai4va", "coco", "acbf", "openmantra", "mimi-eunice", "manga109", "magi", "synthetic"}
    with pytest.raises(ValueError, match=str(tmp_path / "b" / "images")):
        (tmp_path / "b" / "images").mkdir()
        detect_sources(tmp_path / "b" / "images")
    with pytest.raises(ValueError, match="unknown source"):
        load_source("cbz", tmp_path, log=BadRecordLog())


def test_synthetic_set_is_detected_and_labelled_synthetic(tmp_path):
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    path = make_synthetic_ai4va(tmp_path / "syn", 2, 0)
    assert detect_sources(tmp_path) == [("synthetic", path)]
    pages = load_source("synthetic", path, log=BadRecordLog())
    assert len(pages) == 2 and all(p.source == "synthetic" and p.page_id.startswith("synthetic/") for p in pages)
    assert any(e.identity and e.pose and e.depth is not None for e in pages[0].characters)


def test_mapping_values_of_the_wrong_type_are_refused(tmp_path):
    """--coco-mapping content is checked field by field: ValueError naming the field, never a
    TypeError traceback or a string read as a list of one-letter keys."""
    cases = {
        '{"panel": 5}': "CocoMapping field 'panel' must be a list of strings",
        '{"identity": "Name"}': "CocoMapping field 'identity' must be a list of strings",
        '{"depth": [1]}': "CocoMapping field 'depth' must be a list of strings",
        '{"reading_direction": 1}': "reading_direction must be 'ltr' or 'rtl'",
        '{"language": ["fr"]}': "language must be a language code string",
        "[1, 2]": "a CocoMapping must be a JSON object",
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        "{": "invalid JSON",
    }
    for text, message in cases.items():
        path = tmp_path / "mapping.json"
        path.write_text(text)
        with pytest.raises(ValueError, match=re.escape(message)):
            CocoMapping.from_file(path)
    with pytest.raises(ValueError, match="cannot read the file"):
        CocoMapping.from_file(tmp_path / "missing.json")
    assert CocoMapping.from_dict({"identity": ["Name"]}).identity == ["Name"]


def test_detect_sources_ignores_unrelated_and_deeply_nested_json(tmp_path):
    """--source auto: JSON files that are not datasets (deeply nested, binary, empty, odd shapes) in
    the folder or a sub-folder are ignored, not a traceback."""
    good = write(tmp_path / "data", ai4va_dict())
    tools = tmp_path / "data" / "tools"
    tools.mkdir()
    (tools / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tools / "almost_deep.json").write_text('{"info": ' + "[" * 990 + "]" * 990 + "}")
    (tools / "binary.json").write_bytes(bytes(range(256)) * 4)
    (tools / "empty.json").write_text("")
    (tools / "package.json").write_text('{"name": "x", "images": 5}')
    (tmp_path / "data" / "list.json").write_text("[1, [2, {}]]")
    assert detect_sources(tmp_path / "data") == [("ai4va", good)]
