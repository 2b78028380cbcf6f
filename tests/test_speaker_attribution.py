"""Speaker Attribution (issue 11): keys from annotated speaker links only, choices on the page,
marks and grounding boxes; on the real Mimi & Eunice strips (embedded, and all 60 in ../shared)."""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image, ImageChops
from shared_data import DEMO_DATA, SHARED_DATA, needs_shared_data

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.adapters.mimi_eunice import SPEAKER_NAMES
from ai4va_fg_dataset.errors import BadRecordLog
from ai4va_fg_dataset.page import Balloon, Entity, Page
from ai4va_fg_dataset.schema import BOX_COLOR, TASKS
from ai4va_fg_dataset.tasks import generate_samples, make_generator, page_rng
from ai4va_fg_dataset.tasks.speaker_attribution import MAX_CANDIDATE_IOU, SpeakerAttributionGenerator
from ai4va_fg_dataset.tasks.spec import get_task, rarl_tasks

TASK = "speaker_attribution"


def _strips(folder, skip_bad=False):
    return load_source("mimi-eunice", folder, log=BadRecordLog(skip_bad=skip_bad))


def _check_name_items(pages, samples):
    by_id = {p.page_id: p for p in pages}
    for s in samples:
        page = by_id[s.page_id]
        (box,) = s.bboxes
        balloon = next(b for b in page.balloons if list(b.bbox) == box)
        # the key is the annotated label, the options are characters who speak on this strip
        assert s.choices[ord(s.answer) - 65] == SPEAKER_NAMES[balloon.speaker]
        assert set(s.choices) <= {b.speaker_name for b in page.balloons if b.speaker_name}
        assert 2 <= len(s.choices) <= 4 and len(set(s.choices)) == len(s.choices)
        assert balloon.text in s.question


def test_registered_everywhere_a_task_is():
    spec = get_task(TASK)
    assert TASK in TASKS and spec.answer_type == "choice" and spec.has_grounding and TASK in rarl_tasks()
    assert spec.generator_class() is SpeakerAttributionGenerator and spec.needs == ("balloons", "balloons.speaker")


def test_embedded_strips():
    pages = _strips(DEMO_DATA / "mimi-eunice")
    samples, skipped = generate_samples(pages, seed=0, tasks=[TASK])
    # 027 and 050 have Mimi and Eunice speaking; 019 and 052 only Mimi: no second name to offer
    assert sorted({s.page_id.rsplit("/", 1)[1] for s in samples}) == ["027", "050"]
    assert skipped[TASK] == Counter({"no linked speaker with another character on the page to choose from": 2})
    _check_name_items(pages, samples)
    # the marked rectangle is outlined in blue and the erased line is drawn back into it
    s = samples[0]
    page = next(p for p in pages if p.page_id == s.page_id)
    x1, y1, x2, y2 = (int(v) for v in s.bboxes[0])
    assert s.image.getpixel((x1 + 1, (y1 + y2) // 2)) == BOX_COLOR
    with Image.open(page.image_path) as original:
        inner = (x1 + 12, y1 + 12, x2 - 12, y2 - 12)
        diff = ImageChops.difference(original.convert("RGB").crop(inner), s.image.crop(inner))
        assert diff.getbbox() is not None  # text pixels, absent from the erased strip


@needs_shared_data("all 60 Mimi & Eunice strips (speaker labels on every line)")
def test_all_shared_strips():
    pages = _strips(SHARED_DATA / "mimi-eunice", skip_bad=True)
    samples, _ = generate_samples(pages, seed=0, tasks=[TASK])
    assert len(samples) >= 40
    _check_name_items(pages, samples)
    letters = Counter(s.answer for s in samples)
    assert abs(letters["A"] / len(samples) - 0.5) < 0.15, letters


def _page(balloons, entities, panels=()):
    return Page(page_id="t/b/1", source="t", image_path="", width=100, height=100, panels=panels,
                entities=tuple(entities), balloons=tuple(balloons))


def test_never_proximity_never_the_same_character(tmp_path):
    img = tmp_path / "p.png"
    Image.new("RGB", (100, 100), "white").save(img)
    chars = [Entity("a", (2, 2, 20, 40), identity="x"), Entity("b", (30, 2, 48, 40), identity="y"),
             Entity("a2", (60, 2, 78, 40), identity="x"), Entity("o", (80, 50, 98, 90), identity=None),
             Entity("near", (2, 60, 20, 98), identity="z")]
    # balloon right above "near" but said by "b": the key must be "b"
    balloon = Balloon("t", (2, 45, 20, 58), speaker_id="b")
    page = _page([balloon], chars)
    page = Page(**{**page.__dict__, "image_path": str(img)})
    gen = make_generator(TASK)
    assert gen.why_not(page) is None
    for seed in range(20):
        (s,) = gen.generate(page, page_rng(seed, TASK, page.page_id))
        assert s.bboxes == [list(balloon.bbox), [30, 2, 48, 40]]
        assert len(s.choices) == 4 and s.choices[ord(s.answer) - 65] == f"the character in box {s.answer}"
    # a speaker without identity never has a distractor without identity; "x" is never a distractor of "x"
    page2 = Page(**{**page.__dict__, "balloons": (Balloon("t", (2, 45, 20, 58), speaker_id="a"),)})
    (s,) = gen.generate(page2, page_rng(0, TASK, page.page_id))
    assert len(s.choices) == 4  # b, o, near: never a2 (same identity as the speaker)
    only_same = Page(**{**page.__dict__, "entities": (chars[0], chars[2]),
                        "balloons": (Balloon("t", (2, 45, 20, 58), speaker_id="a"),)})
    assert gen.why_not(only_same) is not None
    unlinked = Page(**{**page.__dict__, "balloons": (Balloon("t", (2, 45, 20, 58)),)})
    assert gen.why_not(unlinked) == "no balloon with an annotated speaker"


def test_overlapping_candidates_are_not_both_marked(tmp_path):
    img = tmp_path / "p.png"
    Image.new("RGB", (100, 100), "white").save(img)
    chars = [Entity("s", (0, 0, 50, 50), identity="s"), Entity("d", (5, 5, 50, 50), identity="d"),
             Entity("e", (60, 60, 90, 90), identity="e")]
    page = Page(page_id="t/b/2", source="t", image_path=str(img), width=100, height=100, entities=tuple(chars),
                balloons=(Balloon("t", (60, 0, 90, 20), speaker_id="s"),))
    (s,) = make_generator(TASK).generate(page, page_rng(0, TASK, page.page_id))
    assert len(s.choices) == 2 and MAX_CANDIDATE_IOU < 0.9


def test_coco_speaker_attribute(tmp_path):
    import json

    from ai4va_fg_dataset.errors import AnnotationError

    Image.new("RGB", (200, 100), "white").save(tmp_path / "p.png")
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 40, 40, 50], "attributes": {"Identity": "a"}},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [120, 40, 40, 50], "attributes": {"Identity": "b"}},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [110, 5, 60, 20], "attributes": {"Speaker": 1}}]
    data = {"images": [{"id": 1, "file_name": "p.png", "width": 200, "height": 100}], "annotations": anns,
            "categories": [{"id": 1, "name": "character"}, {"id": 2, "name": "balloon"}]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    (page,) = load_source("coco", tmp_path / "c.json", log=BadRecordLog())
    # the balloon sits above character 2 but the annotation says character 1 speaks: the key is box of 1
    (s,) = make_generator(TASK).generate(page, page_rng(0, TASK, page.page_id))
    assert s.bboxes == [[110, 5, 170, 25], [10, 40, 50, 90]] and len(s.choices) == 2
    anns[2]["attributes"]["Speaker"] = 99
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="speaker '99' is no character"):
        load_source("coco", tmp_path / "c.json", log=BadRecordLog())
