"""Action recognition, depth comparison, character identification and counting, end to end:
synthetic AI4VA-schema pages -> AI4VA adapter -> generators; answers checked against annotations
and marks checked on pixels."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from PIL import Image

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.errors import BadRecordLog
from ai4va_fg_dataset.marks import line_width, marker_position, marker_radius
from ai4va_fg_dataset.schema import BOX_COLOR, CHOICE_LETTERS, MARKER_COLOR
from ai4va_fg_dataset.synthetic import make_synthetic_ai4va
from ai4va_fg_dataset.tasks import generate_samples
from ai4va_fg_dataset.tasks.action_recognition import DEFAULT_ACTIONS, ActionRecognitionGenerator
from ai4va_fg_dataset.tasks.character_identification import DIFFERENT, DISTRACTORS, SAME
from ai4va_fg_dataset.tasks.depth_comparison import DepthComparisonGenerator

TASKS = ["action_recognition", "depth_comparison", "character_identification", "character_counting"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    json_path = make_synthetic_ai4va(folder, n_pages=6, seed=0)
    pages = load_source("synthetic", json_path, log=BadRecordLog())
    samples, skipped = generate_samples(pages, seed=0, tasks=TASKS)
    return json_path, pages, samples, skipped


def _entity(page, box):
    found = [e for e in page.entities if list(e.bbox) == list(box)]
    assert len(found) == 1, box
    return found[0]


def _pages(pages):
    return {p.page_id: p for p in pages}


def test_synthetic_set_is_labelled_and_loads_through_the_adapter(synthetic):
    json_path, pages, _, _ = synthetic
    data = json.loads(json_path.read_text())
    assert "SYNTHETIC" in data["info"]["description"]
    assert json_path.name.startswith("synthetic_")
    assert all(img["file_name"].startswith("synthetic_") for img in data["images"])
    assert {c["name"] for c in data["categories"]} == {"panel", "character", "object", "speech balloon"}
    chars = [a for a in data["annotations"] if a["category_id"] == 2]
    assert all(set(a["attributes"]) == {"Intradepth", "Interdepth", "Identity", "Pose"} for a in chars)
    assert len(pages) == 6 and {p.source for p in pages} == {"synthetic"}
    assert all(p.page_id.startswith("synthetic/") for p in pages)
    assert sum(len(p.characters) for p in pages) == len(chars)
    # same seed, same files
    again = make_synthetic_ai4va(json_path.parent / "again", n_pages=6, seed=0)
    assert again.read_text() == json_path.read_text()


def test_every_character_task_is_fed(synthetic):
    _, _, samples, skipped = synthetic
    counts = Counter(s.task for s in samples)
    assert all(counts[t] >= 5 for t in TASKS), counts
    assert all(not skipped[t] for t in TASKS), skipped
    ids = [s.id for s in samples]
    assert len(ids) == len(set(ids))
    assert all(s.id.startswith(f"{s.task}/{s.page_id}/") for s in samples)


def test_action_recognition_answer_is_the_pose_and_box_is_drawn(synthetic):
    _, pages, samples, _ = synthetic
    by_id = _pages(pages)
    vocab = {e.pose for p in pages for e in p.characters}
    for s in (s for s in samples if s.task == "action_recognition"):
        page = by_id[s.page_id]
        char = _entity(page, s.bboxes[0])
        assert len(s.choices) == 4 and len(set(s.choices)) == 4
        assert s.choices[CHOICE_LETTERS.index(s.answer)] == char.pose
        assert set(s.choices) <= vocab
        x1, y1, _, y2 = (round(v) for v in char.bbox)
        assert s.image.getpixel((x1, (y1 + y2) // 2)) == BOX_COLOR
        assert s.image.getpixel((x1 + line_width(s.image.size) - 1, y1 + 5)) == BOX_COLOR
        assert (s.width, s.height) == s.image.size == (page.width, page.height)
    letters = Counter(s.answer for s in samples if s.task == "action_recognition")
    assert len(letters) >= 3  # the correct option is not always in the same place


def test_action_distractors_fall_back_to_default_vocabulary(synthetic):
    _, pages, _, _ = synthetic
    gen = ActionRecognitionGenerator()
    gen.prepare([pages[0]])
    page_poses = {e.pose for e in pages[0].characters}
    assert len(gen.vocabulary) >= 4
    assert set(gen.vocabulary) - page_poses <= set(DEFAULT_ACTIONS)
    assert gen.why_not(pages[0]) is None
    for s in gen.generate(pages[0], random.Random(1)):
        assert len(set(s.choices)) == 4 and s.choices[CHOICE_LETTERS.index(s.answer)] in page_poses


def test_depth_comparison_answer_is_the_smaller_depth_and_markers_are_orange(synthetic):
    _, pages, samples, _ = synthetic
    by_id = _pages(pages)
    depth = [s for s in samples if s.task == "depth_comparison"]
    for s in depth:
        page = by_id[s.page_id]
        one, two = (_entity(page, b) for b in s.bboxes)
        assert one.panel_id == two.panel_id and one.depth != two.depth
        assert s.choices == ["Entity 1", "Entity 2"]
        assert s.answer == ("A" if one.depth < two.depth else "B")
        raw = Image.open(page.image_path).convert("RGB")
        for e in (one, two):
            cx, cy = marker_position(e.bbox, raw.size, "top")
            r = marker_radius(raw.size) - 2
            ring = [s.image.getpixel((round(cx + dx), round(cy + dy))) for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r))]
            assert all(p == MARKER_COLOR for p in ring)
    assert {s.answer for s in depth} == {"A", "B"}


def test_depth_comparison_skips_pages_without_depth_pairs(synthetic):
    _, pages, _, _ = synthetic
    from dataclasses import replace

    flat = replace(pages[0], entities=tuple(replace(e, depth=1.0) for e in pages[0].entities))
    assert DepthComparisonGenerator().why_not(flat) == "no two entities of one panel with different ordinal depths"
    none = replace(pages[0], entities=tuple(replace(e, depth=None) for e in pages[0].entities))
    assert DepthComparisonGenerator().why_not(none) == "no entity with an ordinal depth"


def test_character_identification_pairs_and_options(synthetic):
    _, pages, samples, _ = synthetic
    by_id = _pages(pages)
    ident = [s for s in samples if s.task == "character_identification"]
    answers = Counter()
    for s in ident:
        page = by_id[s.page_id]
        a, b = (_entity(page, box) for box in s.bboxes)
        assert a.panel_id != b.panel_id
        assert sorted(s.choices) == sorted([SAME, DIFFERENT, *DISTRACTORS])
        truth = SAME if a.identity == b.identity else DIFFERENT
        assert s.choices[CHOICE_LETTERS.index(s.answer)] == truth
        answers[truth] += 1
        for e in (a, b):
            _, y1, x2, y2 = (round(v) for v in e.bbox)
            assert s.image.getpixel((x2 - 1, (y1 + y2) // 2)) == BOX_COLOR
    assert answers[SAME] >= 3 and answers[DIFFERENT] >= 3, answers


def test_character_counting_counts_every_appearance(synthetic):
    _, pages, samples, _ = synthetic
    by_id = _pages(pages)
    for s in (s for s in samples if s.task == "character_counting"):
        page = by_id[s.page_id]
        name = next(n for n in {e.identity for e in page.characters} if f"does {n}," in s.question)
        apps = [e for e in page.characters if e.identity == name]
        assert s.answer == str(len(apps)) and s.answer_type == "number" and s.choices == []
        assert sorted(map(tuple, s.bboxes)) == sorted(tuple(e.bbox) for e in apps)
        marked = [e for e in apps if s.image.getpixel((round(e.bbox[0]), round((e.bbox[1] + e.bbox[3]) / 2))) == BOX_COLOR]
        assert len(marked) >= 1
