"""Manga109 adapter: the MIT schema fixtures of manga109api, a hand-written spread with
Manga109Dialog speaker links, spread splitting, reading order and bad input.

No Manga109 data is used or shipped: ``tests/fixtures/manga109-format`` holds the three invented
annotation files of the ``manga109api`` tests (MIT, LICENSE beside them) and
``tests/fixtures/manga109-hand`` a spread written for these tests; page images are generated here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from ai4va_fg_dataset.adapters import ADAPTERS, detect_sources, load_source
from ai4va_fg_dataset.adapters.manga109 import Manga109Adapter
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.tasks import generate_samples, make_generator, page_rng
from ai4va_fg_dataset.tasks.base import open_page, page_bytes

FIXTURES = Path(__file__).parent / "fixtures"
RIGHT_COLOUR, LEFT_COLOUR = (200, 30, 30), (30, 30, 200)


def _release(tmp_path: Path, name: str, size=None) -> Path:
    """Copy a fixture release to ``tmp_path`` and draw every page image it declares (right half
    red, left half blue, so a crop can be checked on pixels)."""
    import defusedxml.ElementTree as ET

    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    for xml in (root / "annotations").glob("*.xml"):
        title = xml.stem
        for page in ET.parse(xml).getroot().iter("page"):
            w, h = size or (int(page.attrib["width"]), int(page.attrib["height"]))
            im = Image.new("RGB", (w, h), LEFT_COLOUR)
            im.paste(RIGHT_COLOUR, (w // 2, 0, w, h))
            folder = root / "images" / title
            folder.mkdir(parents=True, exist_ok=True)
            im.save(folder / f"{int(page.attrib['index']):03d}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    root = _release(tmp_path_factory.mktemp("m109"), "manga109-hand")
    adapter = Manga109Adapter(dialog=root / "dialog")
    pages = adapter.load(root, log=BadRecordLog())
    return root, adapter, {p.page_id: p for p in pages}, pages


def test_schema_fixtures_parse(tmp_path):
    root = _release(tmp_path, "manga109-format")
    adapter = Manga109Adapter()
    pages = adapter.load(root, log=BadRecordLog())
    # 5 + 3 + 3 spreads of 1654 x 1170, two pages each, right page first
    assert len(pages) == 22
    assert [p.page_id for p in pages[:4]] == [
        "manga109/TitleA/000-right", "manga109/TitleA/000-left", "manga109/TitleA/001-right", "manga109/TitleA/001-left"]
    assert all((p.width, p.height) == (827, 1170) and p.reading_direction == "rtl" for p in pages)
    assert adapter.ignored_tags == {"custom_tag": 2, "custom_tag2": 2, "custom_tag3": 1}
    a3r, a3l = pages[6], pages[7]
    assert a3r.page_id.endswith("003-right") and a3l.page_id.endswith("003-left")
    # every box of TitleA page 3 lands on exactly one half
    total = sum(len(p.panels) + len(p.entities) + len(p.balloons) for p in (a3r, a3l))
    assert total == 4 + (4 + 2) + 6  # frames, bodies + faces, texts
    # frame 00000007 (158..1611) has most of its area right of 827: right page, re-based and clipped
    f7 = a3r.panel("00000007")
    assert f7.bbox == (0.0, 436.0, 1611 - 827.0, 1073.0)
    # a body is a character with book-level identity and name; "Others" has no identity
    b = {e.id: e for e in (*a3r.entities, *a3l.entities)}
    assert b["00000006"].identity == "00000003" and b["00000006"].name == "女1"
    assert b["00000013"].name == "Others" and b["00000013"].identity is None
    # the face of 男1 has no body of 男1 under it: it is an appearance of its own
    assert b["0000000f"].kind == "character" and b["0000000f"].attributes["tag"] == "face"
    assert {e.kind for e in pages[4].entities} == {"character", "face"}  # TitleA page 2: body + its face
    face = next(e for p in pages[4:6] for e in p.entities if e.kind == "face")
    assert face.attributes["body_id"] == "00000002"
    # texts keep their (multi-line) content
    texts = {bl.id: bl.text for p in (a3r, a3l) for bl in p.balloons}
    assert texts["0000000d"] == "はあ\nはあ" and texts["00000016"] == "よ……"


def test_hand_spread_split_order_and_links(hand):
    _, adapter, by_id, pages = hand
    right, left = by_id["manga109/HandSpread/000-right"], by_id["manga109/HandSpread/000-left"]
    assert [p.page_id for p in pages] == [right.page_id, left.page_id]
    assert right.crop == (400.0, 0.0, 800.0, 500.0) and left.crop == (0.0, 0.0, 400.0, 500.0)
    # panels in right-to-left reading order: top, bottom-right, bottom-left (listed out of order in the XML)
    assert [(p.id, p.order) for p in right.panels] == [("00000f01", 0), ("00000f02", 1), ("00000f03", 2)]
    assert right.panel("00000f02").bbox == (210.0, 250.0, 390.0, 490.0)
    assert [(p.id, p.order) for p in left.panels] == [("00000f04", 0), ("00000f05", 1)]
    # texts: panel by panel, right to left inside a panel
    order = {b.id: b.order for b in right.balloons}
    assert order == {"00000t01": 0, "00000t02": 1, "00000t03": 2, "00000t04": 3}
    # the body crossing the middle (350..470) goes to the right page, clipped and re-based
    assert right.entity("00000b06").bbox == (0.0, 100.0, 70.0, 200.0)
    # Manga109Dialog links: speaker_id = body id on the same half; the cross-half link is dropped
    speakers = {b.id: b.speaker_id for p in pages for b in p.balloons}
    assert speakers == {"00000t01": "00000b01", "00000t02": "00000b02", "00000t03": "00000b03",
                        "00000t04": "00000b04", "00000t05": "00000b08", "00000t06": None}
    assert adapter.cross_page_links == 1 and adapter.ignored_tags == {"custom_tag": 1}


def test_crop_is_the_half_on_pixels(hand):
    _, _, by_id, _ = hand
    right, left = by_id["manga109/HandSpread/000-right"], by_id["manga109/HandSpread/000-left"]
    for page, colour in ((right, RIGHT_COLOUR), (left, LEFT_COLOUR)):
        im = open_page(page)
        assert im.size == (page.width, page.height) == (400, 500)
        assert all(abs(a - b) < 12 for a, b in zip(im.getpixel((200, 250)), colour))
        import io

        with Image.open(io.BytesIO(page_bytes(page))) as again:
            assert again.size == (400, 500) and again.format == "JPEG"


def test_tasks_on_hand_spread(hand):
    _, _, by_id, pages = hand
    right = by_id["manga109/HandSpread/000-right"]
    tasks = ["character_identification", "character_counting", "panel_reordering", "dialog_reordering",
             "speaker_attribution"]
    samples, _ = generate_samples(pages, seed=0, tasks=tasks)
    made = {t: [s for s in samples if s.task == t] for t in tasks}
    assert all(made[t] for t in tasks), {t: len(v) for t, v in made.items()}
    # counting includes every appearance: 太郎 = 3 bodies on the right page; 花子 = 2 bodies + a face alone
    counts = {s.question.split(",")[0]: s.answer for s in made["character_counting"] if s.page_id == right.page_id}
    assert counts == {"How many times does 太郎": "3", "How many times does 花子": "3"}
    # the keys of speaker attribution are the annotated links: the speaker's box is the lettered answer
    for s in made["speaker_attribution"]:
        page = by_id[s.page_id]
        balloon = next(b for b in page.balloons if list(b.bbox) == s.bboxes[0])
        assert list(page.entity(balloon.speaker_id).bbox) == s.bboxes[1]
    # identification pairs never overlap and never repeat
    for s in made["character_identification"]:
        a, b = s.bboxes
        assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    ids = [tuple(map(tuple, sorted(s.bboxes))) for s in made["character_identification"]]
    assert len(ids) == len(set(ids))


def test_detected_and_registered(tmp_path):
    root = _release(tmp_path, "manga109-hand")
    assert ADAPTERS["manga109"] is Manga109Adapter
    assert ("manga109", root) in detect_sources(tmp_path)
    assert len(load_source("manga109", root, log=BadRecordLog())) == 2


def test_no_split_keeps_the_spread(tmp_path):
    root = _release(tmp_path, "manga109-hand")
    pages = Manga109Adapter(split_spreads=False).load(root, log=BadRecordLog())
    assert [(p.page_id, p.width, p.crop) for p in pages] == [("manga109/HandSpread/000", 800, None)]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda x: x.replace('character="00000a02"/>\n      <frame id="00000f01"', 'character="0000dead"/>\n      <frame id="00000f01"'),
         "not declared"),
        (lambda x: x.replace('xmin="420" ymin="300" xmax="500"', 'xmin="520" ymin="300" xmax="500"'), "inverted"),
        (lambda x: x.replace('xmax="380" ymax="480" character="00000a02"', 'xmax="980" ymax="480" character="00000a02"'),
         "outside"),
        (lambda x: x.replace("</book>", ""), "XML"),
        (lambda x: '<!DOCTYPE b [<!ENTITY a "aaaa">]>' + x.split("?>", 1)[1].replace("うんうんそれで", "&a;"), "XML"),
    ],
)
def test_bad_records(tmp_path, edit, reason):
    root = _release(tmp_path, "manga109-hand")
    xml = root / "annotations" / "HandSpread.xml"
    xml.write_text(edit(xml.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(AnnotationError, match=reason):
        Manga109Adapter().load(root, log=BadRecordLog())
    log = BadRecordLog(skip_bad=True)
    Manga109Adapter().load(root, log=log)
    assert len(log.records) == 1 and str(xml.name) in log.records[0].file or "HandSpread" in log.records[0].record


def test_image_size_mismatch_and_missing_book(tmp_path):
    root = _release(tmp_path, "manga109-hand", size=(640, 480))
    with pytest.raises(AnnotationError, match="XML says 800x500"):
        Manga109Adapter().load(root, log=BadRecordLog())
    (root / "books.txt").write_text("HandSpread\nNoSuchBook\n", encoding="utf-8")
    log = BadRecordLog(skip_bad=True)
    assert Manga109Adapter().load(root, log=log) == []
    assert [r.record for r in log.records] == ["HandSpread page 0", "book NoSuchBook"]


def test_bad_dialog_link(tmp_path):
    root = _release(tmp_path, "manga109-hand")
    d = root / "dialog" / "HandSpread.xml"
    d.write_text(d.read_text(encoding="utf-8").replace('speaker_id="00000b04"', 'speaker_id="0000beef"'), encoding="utf-8")
    with pytest.raises(AnnotationError, match="names no text or body"):
        Manga109Adapter(dialog=root / "dialog").load(root, log=BadRecordLog())
    with pytest.raises(ValueError, match="does not exist"):
        Manga109Adapter(dialog=root / "nowhere")


def test_speaker_attribution_keys_by_hand(hand):
    _, _, by_id, _ = hand
    right = by_id["manga109/HandSpread/000-right"]
    gen = make_generator("speaker_attribution")
    samples = gen.generate(right, page_rng(0, "speaker_attribution", right.page_id))
    assert len(samples) == 4
    speaker_of = {"00000t01": "00000b01", "00000t02": "00000b02", "00000t03": "00000b03", "00000t04": "00000b04"}
    for s in samples:
        balloon = next(b for b in right.balloons if list(b.bbox) == s.bboxes[0])
        assert list(right.entity(speaker_of[balloon.id]).bbox) == s.bboxes[1]
        assert 2 <= len(s.choices) <= 4 and s.choices[ord(s.answer) - ord("A")].endswith(f"box {s.answer}")
