"""Dialog and panel reordering on real annotated comics (Craphound ACBF, OpenMantra, Mimi & Eunice)
through the adapters; answers decoded back and checked against the annotated orders. Runs on the
embedded demo pages (ai4va_fg_dataset/demo_data), so it needs nothing beside the repo."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from shared_data import DEMO_DATA as DATA

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.core.geometry import crop_image
from ai4va_fg_dataset.errors import BadRecordLog
from ai4va_fg_dataset.marks import marker_radius
from ai4va_fg_dataset.schema import CHOICE_LETTERS, MARKER_COLOR
from ai4va_fg_dataset.tasks.dialog_reordering import MIN_CONTENT_CHARS, DialogReorderingGenerator, has_content
from ai4va_fg_dataset.tasks.panel_reordering import (
    MIN_CROP_SCALE,
    STRIP_FRACTION,
    PanelReorderingGenerator,
    aspect,
    centre_crop,
)


@pytest.fixture(scope="module")
def craphound():
    return load_source("acbf", DATA / "craphound" / "craphound-1.1.acbf", log=BadRecordLog())


@pytest.fixture(scope="module")
def mantra():
    pages = load_source("openmantra", DATA / "open-mantra" / "annotation.json", log=BadRecordLog())
    return [p for p in pages if len(p.panels) >= 4][:8]


def _en(b):
    return " ".join((b.texts.get("en") or b.text).split())


def _check_dialog(page, samples):
    ordered = [b for b in sorted((b for b in page.balloons if b.order is not None), key=lambda b: b.order)]
    texts_in_order = [_en(b) for b in ordered if _en(b) and has_content(_en(b))]
    for s in samples:
        if page.source == "mimi-eunice":  # text-erased strips: the lines are drawn back in
            assert isinstance(s.image, Image.Image) and s.image.size == (page.width, page.height)
        else:
            assert s.image == Path(page.image_path).read_bytes()
        assert s.bboxes == []
        assert len(s.choices) == 2 and s.choices[0] != s.choices[1]
        lines = re.findall(r'^(\d)\. "(.*)"$', s.question, flags=re.MULTILINE)
        listed = [t for _, t in lines]
        assert 3 <= len(listed) <= 4
        correct = [int(k) for k in s.choices[CHOICE_LETTERS.index(s.answer)].split(", ")]
        in_reading_order = [listed[k - 1] for k in correct]
        # the decoded order is a run of consecutive balloons of the annotated order
        k = len(listed)
        assert any(texts_in_order[i:i + k] == in_reading_order for i in range(len(texts_in_order)))
        assert all(sum(c.isalnum() for c in t) >= MIN_CONTENT_CHARS for t in listed)
        wrong = [int(k) for k in s.choices[1 - CHOICE_LETTERS.index(s.answer)].split(", ")]
        assert sorted(wrong) == list(range(1, len(listed) + 1)) and wrong != correct


def test_dialog_reordering_on_craphound_and_openmantra(craphound, mantra):
    gen = DialogReorderingGenerator()
    n = 0
    for page in craphound + mantra:
        if gen.why_not(page) is not None:
            continue
        samples = gen.generate(page, random.Random(page.page_id))
        _check_dialog(page, samples)
        n += len(samples)
        if page.reading_direction == "rtl":
            assert all("right to left" in s.question for s in samples)
    assert n >= 15


def test_dialog_reordering_mimi_eunice_and_skip_reason(tmp_path):
    pages = load_source("mimi-eunice", DATA / "mimi-eunice", log=BadRecordLog(skip_bad=True))
    gen = DialogReorderingGenerator()
    fed = [p for p in pages if gen.why_not(p) is None]
    assert len(fed) == len(pages) == 4
    short = replace(fed[0], balloons=fed[0].balloons[:2])
    assert gen.why_not(short).startswith("fewer than 3 transcribed content lines")
    for page in fed:
        samples = gen.generate(page, random.Random(0))
        _check_dialog(page, samples)
        # the erased balloons get their text back: dark strokes inside every line's rectangle
        raw = Image.open(page.image_path).convert("L")
        drawn = samples[0].image.convert("L")
        for b in page.balloons:
            box = tuple(round(v) for v in b.bbox)
            before = sum(v < 80 for v in raw.crop(box).getdata())
            after = sum(v < 80 for v in drawn.crop(box).getdata())
            assert after > before, (page.page_id, b.id, b.text)


def _diff(region, crop):
    """Mean absolute pixel difference of ``region`` and ``crop`` resized to the region's size."""
    a = region.convert("RGB").tobytes()
    b = crop.convert("RGB").resize(region.size).tobytes()
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def _check_panel_reordering(page, s):
    raw = Image.open(page.image_path).convert("RGB")
    w, h = raw.size
    assert s.image.size == (s.width, s.height) and s.height == h and s.width >= w + round(STRIP_FRACTION * w)
    assert s.bboxes == [] and sorted(s.choices) == ["1: A, 2: B", "1: B, 2: A"]
    # the two blanked panels: white around an orange marker at the panel centre
    r = marker_radius(raw.size) - 2
    blank = [
        p for p in page.panels
        if s.image.getpixel((round((p.bbox[0] + p.bbox[2]) / 2) + r, round((p.bbox[1] + p.bbox[3]) / 2))) == MARKER_COLOR
    ]
    assert len(blank) == 2
    for p in blank:  # white beside the marker
        cx, cy = round((p.bbox[0] + p.bbox[2]) / 2), round((p.bbox[1] + p.bbox[3]) / 2)
        assert s.image.getpixel((cx + 3 * r, cy)) == (255, 255, 255)
    first, second = sorted(blank, key=lambda p: p.order)
    assert second.order == first.order + 1
    # the crops in the strip: A on top, B below; match them to the removed panels by content
    strip = s.image.crop((w + 4, 0, s.image.width, h))  # past the divider line
    halves = [strip.crop((0, 0, strip.width, h // 2)), strip.crop((0, h // 2, strip.width, h))]
    regions = []
    for half in halves:
        mask = half.convert("L").point(lambda v: 255 if v < 250 else 0)
        regions.append(half.crop(mask.getbbox()))
    # both tiles have the same size (no shape cue) and show the panels at >= MIN_CROP_SCALE
    tiles = s.audit_meta["tiles"]
    assert [t[2] - t[0] for t in tiles] == [tiles[0][2] - tiles[0][0]] * 2
    assert [t[3] - t[1] for t in tiles] == [tiles[0][3] - tiles[0][1]] * 2
    assert s.audit_meta["slots"] == [list(first.bbox), list(second.bbox)]
    for t, region in zip(tiles, regions):  # the visible content spans (almost) the whole tile
        assert region.width >= 0.9 * (t[2] - t[0]) or region.height >= 0.9 * (t[3] - t[1])
    target = (aspect(first.bbox) * aspect(second.bbox)) ** 0.5
    shown = [centre_crop(first.bbox, target), centre_crop(second.bbox, target)]
    assert all(tiles[0][2] - tiles[0][0] >= MIN_CROP_SCALE * (b[2] - b[0]) - 1 for b in shown)
    a = regions[0].resize((64, 64))
    a_is_first = _diff(a, crop_image(raw, shown[0])) < _diff(a, crop_image(raw, shown[1]))
    correct = "1: A, 2: B" if a_is_first else "1: B, 2: A"
    assert s.choices[CHOICE_LETTERS.index(s.answer)] == correct


def test_panel_reordering_on_real_pages(craphound, mantra):
    gen = PanelReorderingGenerator()
    checked = 0
    for page in craphound[1:] + mantra[:4]:
        assert gen.why_not(page) is None
        for s in gen.generate(page, random.Random(page.page_id)):
            _check_panel_reordering(page, s)
            checked += 1
    assert checked >= 6
    two = replace(craphound[1], panels=craphound[1].panels[:2])
    assert gen.why_not(two) == "fewer than 3 panels"
    unordered = replace(craphound[1], panels=tuple(replace(p, order=None) for p in craphound[1].panels))
    assert gen.why_not(unordered) == "panels without annotated reading order"


def test_drawn_samples_remember_the_source_format(craphound):
    """Composites made with Image.new() carry the page's format, so export keeps JPEG scans JPEG."""
    samples = PanelReorderingGenerator().generate(craphound[0], random.Random(0))
    assert samples and all(s.image.info["source_format"] == "JPEG" for s in samples)
