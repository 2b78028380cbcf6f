"""Magi / PopManga adapter on hand-written fixtures of both JSON shapes for the embedded Mimi &
Eunice strip 050 (tests/fixtures/magi, tests/fixtures/popmanga: boxes drawn by hand, links from the
strip's speaker labels), plus layout, detection and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ai4va_fg_dataset.adapters import ADAPTERS, detect_sources, load_source
from ai4va_fg_dataset.adapters.magi import MagiAdapter
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.tasks import generate_samples

FIXTURES = Path(__file__).parent / "fixtures"
STRIPS = Path(__file__).parents[1] / "ai4va_fg_dataset" / "demo_data" / "mimi-eunice" / "images"
MIMI, EUNICE = {"c0", "c2", "c4"}, {"c1", "c3", "c5"}


def _load(kind: str, **kw):
    return load_source("magi", FIXTURES / kind, log=BadRecordLog(), image_root=STRIPS, **kw)


def test_magi_output_shape():
    (page,) = _load("magi")
    assert page.page_id == "magi/050" and page.identity_scope == "page" and page.reading_direction == "rtl"
    (page,) = _load("magi", reading_direction="ltr")  # the strip is a Western (left-to-right) comic
    assert page.reading_direction == "ltr"
    assert (page.width, page.height) == (2400, 747)
    assert [(p.id, p.order) for p in page.panels] == [("p0", 0), ("p1", 1), ("p2", 2)]
    assert {e.identity for e in page.characters} == {"cluster0", "cluster1"}
    assert {e.id for e in page.characters if e.identity == "cluster0"} == MIMI
    # every character in its panel; texts in Magi's (reading) order with their OCR line and speaker
    assert [e.panel_id for e in page.characters] == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert [(b.order, b.speaker_id, b.kind) for b in page.balloons] == [
        (0, "c1", "speech"), (1, "c3", "speech"), (2, "c4", "speech"), (3, "c5", "speech")]
    assert page.balloons[2].text == "THAT'S LAME."


def test_popmanga_shape():
    (page,) = _load("popmanga")
    assert page.page_id == "magi/050"
    assert page.panels == () and all(e.panel_id is None for e in page.characters)
    assert {e.identity for e in page.characters} == {"cluster7", "cluster3"}
    # text indices count text boxes only; the last text has no match
    assert [b.speaker_id for b in page.balloons] == ["c1", "c3", "c4", None]
    assert all(b.text is None and b.order is None for b in page.balloons)


def test_tasks_with_correct_keys():
    pages = _load("magi", reading_direction="ltr") + [
        p for p in load_source("magi", FIXTURES / "popmanga", log=BadRecordLog(), image_root=STRIPS,
                               source_name="popmanga")]
    tasks = ["character_identification", "character_counting", "dialog_reordering", "speaker_attribution"]
    samples, _ = generate_samples(pages, seed=0, tasks=tasks)
    by = {(s.task, s.source) for s in samples}
    assert {("character_identification", "magi"), ("character_counting", "magi"), ("dialog_reordering", "magi"),
            ("speaker_attribution", "magi"), ("character_counting", "popmanga"),
            ("character_identification", "popmanga"), ("speaker_attribution", "popmanga")} <= by
    for s in samples:
        page = next(p for p in pages if p.page_id == s.page_id)
        boxes = {tuple(e.bbox): e for e in page.characters}
        if s.task == "character_counting":  # 3 appearances each; clusters have no name to show
            assert s.answer == "3" and "cluster" not in s.question
            assert len({boxes[tuple(b)].identity for b in s.bboxes}) == 1
        elif s.task == "character_identification":
            a, b = (boxes[tuple(x)] for x in s.bboxes)
            same = s.choices[ord(s.answer) - 65].startswith("Yes")
            assert same == (a.identity == b.identity)
            if not page.panels:
                assert "The two boxes mark the same panel" not in s.choices
        elif s.task == "speaker_attribution":
            balloon = next(b for b in page.balloons if list(b.bbox) == s.bboxes[0])
            speaker = boxes[tuple(s.bboxes[1])]
            assert speaker.id == balloon.speaker_id
            assert (speaker.id in EUNICE) == (balloon.id != "t2")  # E, E, M, E


def test_layout_with_image_beside_json(tmp_path):
    folder = tmp_path / "series" / "chapter_1"
    folder.mkdir(parents=True)
    shutil.copy(STRIPS / "050.png", folder / "012.png")
    shutil.copy(FIXTURES / "popmanga" / "050.png.json", folder / "012.png.json")
    (tmp_path / "notes.json").write_text('{"hello": 1}')  # another JSON: ignored
    pages = MagiAdapter().load(tmp_path, log=BadRecordLog())
    assert [p.page_id for p in pages] == ["magi/series/chapter_1/012"] and pages[0].book == "series"
    assert ADAPTERS["magi"] is MagiAdapter
    assert ("magi", folder / "012.png.json") in detect_sources(folder)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["bbox_annotations"]["labels"].insert(0, d["bbox_annotations"]["labels"].pop()), "follows a text box"),
        (lambda d: d["character_clusters"].pop(), "character_clusters must be 6 ints"),
        (lambda d: d["text_to_character_matches"].append([4, 0]), "text_index < 4"),
        (lambda d: d["bbox_annotations"]["bboxes_as_x1y1x2y2"][0].__setitem__(2, 9000), "outside"),
        (lambda d: d["bbox_annotations"]["labels"].__setitem__(0, 2), "0 \\(character\\) or 1"),
    ],
)
def test_bad_records(tmp_path, edit, reason):
    data = json.loads((FIXTURES / "popmanga" / "050.png.json").read_text())
    edit(data)
    shutil.copy(STRIPS / "050.png", tmp_path / "050.png")
    (tmp_path / "050.png.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=reason):
        MagiAdapter().load(tmp_path, log=BadRecordLog())
    log = BadRecordLog(skip_bad=True)
    MagiAdapter().load(tmp_path, log=log)
    assert len(log.records) == 1


def test_missing_image_and_ambiguous_link(tmp_path):
    data = json.loads((FIXTURES / "magi" / "050.json").read_text())
    (tmp_path / "050.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="image file not found"):
        MagiAdapter().load(tmp_path, log=BadRecordLog())
    data["text_character_associations"].append([0, 0])  # text 0 now said by two characters
    (tmp_path / "050.json").write_text(json.dumps(data))
    (page,) = MagiAdapter(image_root=STRIPS).load(tmp_path, log=BadRecordLog())
    assert page.balloons[0].speaker_id is None and page.balloons[1].speaker_id == "c3"
    with pytest.raises(ValueError, match="reading_direction"):
        MagiAdapter(reading_direction="up")
