"""Mimi & Eunice adapter on the real transcripts (shared/data), the demo subset and bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image
from shared_data import SHARED_DATA, needs_shared_data

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.adapters.mimi_eunice import MimiEuniceAdapter
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.schema import TASKS

DATA = SHARED_DATA / "mimi-eunice"
DEMO = Path(__file__).parents[1] / "ai4va_fg_dataset" / "demo_data" / "mimi-eunice"
needs_data = needs_shared_data("all Mimi & Eunice strips (counts, the 5 inconsistent strips)")

# Strips of the real data whose transcript and word-bubbles disagree (checked by hand):
# 004 and 025 label a line with different speakers, 024's word-bubbles are a copy of 001's,
# 031 and 032 end with a line both characters say but have one rectangle for it.
INCONSISTENT = {"004": "strip 004 line 3", "024": "strip 024", "025": "strip 025 line 0",
                "031": "strip 031", "032": "strip 032"}


@needs_data
def test_real_strips_strict_stops_at_first_inconsistent_strip():
    assert len(list((DATA / "transcripts").glob("*.txt"))) == 60
    assert len(list((DATA / "images").glob("*.png"))) == 60
    with pytest.raises(AnnotationError) as err:
        load_source("mimi-eunice", DATA, log=BadRecordLog())
    assert err.value.file == str(DATA / "word-bubbles" / "004.tsv") and err.value.record == "strip 004 line 3"
    assert "speaker 'M' in word-bubbles but 'E' in the transcript" in err.value.reason


@needs_data
def test_real_strips_skip_bad():
    log = BadRecordLog(skip_bad=True)
    pages = load_source("mimi-eunice", DATA, log=log)
    assert len(pages) == 60 - len(INCONSISTENT)
    assert [(Path(r.file).stem, r.record) for r in log.records] == sorted(INCONSISTENT.items())
    assert {p.page_id.rsplit("/", 1)[1] for p in pages}.isdisjoint(INCONSISTENT)
    p = pages[0]
    assert p.page_id == "mimi-eunice/Mimi_and_Eunice/001" and p.license == "CC BY-SA 4.0"
    assert (p.width, p.height) == Image.open(DATA / "images" / "001.png").size == (2400, 747)
    assert [(b.speaker, b.text, b.bbox, b.order) for b in p.balloons] == [
        ("E", "CHEER UP, MIMI...", (411.0, 25.0, 783.0, 261.0), 0),
        ("E", "FEELINGS AREN'T FACTS!", (1135.0, 24.0, 1584.0, 349.0), 1),
        ("M", "IT'S A FACT THAT I'M SAD!", (1861.0, 25.0, 2376.0, 351.0), 2),
    ]
    assert p.panels == () and all(b.panel_id is None for b in p.balloons)
    for p in pages:
        for b in p.balloons:
            x1, y1, x2, y2 = b.bbox
            assert 0 <= x1 < x2 <= p.width and 0 <= y1 < y2 <= p.height, (p.page_id, b.id)
    by_id = {p.page_id[-3:]: p for p in pages}
    # comments ("}}...") removed, *emphasis* asterisks and soft hyphens dropped
    assert by_id["013"].balloons[0].text == "FALSE EVIDENCE APPEARING REAL" and by_id["013"].balloons[0].kind == "label"
    assert by_id["019"].balloons[1].text == "FORCING IT WILL JUST GIVE YOU HEMORRHOIDS!"
    assert [b.speaker for b in by_id["021"].balloons] == ["E", "SFX", "E"]


def test_demo_subset_and_capabilities():
    adapter = MimiEuniceAdapter()
    pages = adapter.load(DEMO, log=BadRecordLog())
    assert [p.page_id for p in pages] == [f"mimi-eunice/Mimi_and_Eunice/{n}" for n in ("019", "027", "050", "052")]
    assert [len(p.balloons) for p in pages] == [4, 4, 4, 3]
    # raw: "*FORCING* IT WILL JUST GIVE YOU *HEMOR\u00adRHOIDS!*" (emphasis asterisks, soft hyphen)
    assert pages[0].balloons[1].text == "FORCING IT WILL JUST GIVE YOU HEMORRHOIDS!"
    assert pages[0].balloons[2].speaker == "SFX"
    # speaker labels of named characters become speaker names (Speaker Attribution's key); SFX names nobody
    assert [b.speaker_name for b in pages[1].balloons] == ["Mimi", "Eunice", "Eunice", "Eunice"]
    assert pages[0].balloons[2].speaker_name is None
    caps = adapter.capabilities(pages)
    assert set(caps) == set(TASKS)
    assert {t for t, why in caps.items() if why is None} == {"dialog_reordering", "speaker_attribution"}
    assert "no panel" in caps["panel_reordering"]
    assert "CC BY-SA" in (DEMO / "README.md").read_text(encoding="utf-8")


# -- bad input ----------------------------------------------------------------------------------

TXT = "{n}\nM: HELLO *THERE*!\nE: HI. }}a comment\nSFX: BOOM!\n"
TSV = "{n}\nE\tM\tSFX }}List of speakers\n}}Speaker\tX\tY\tX\tY\nM\t10\t10\t90\t60\nE\t110\t10\t190\t60\nSFX\t210\t10\t290\t60\n"


def _folder(tmp: Path, strips=("001", "002"), txt=None, tsv=None, images=None) -> Path:
    for sub in ("transcripts", "word-bubbles", "images"):
        (tmp / sub).mkdir(exist_ok=True)
    for n in strips:
        (tmp / "transcripts" / f"{n}.txt").write_text((txt or {}).get(n, TXT).replace("{n}", n), encoding="utf-8")
        (tmp / "word-bubbles" / f"{n}.tsv").write_text((tsv or {}).get(n, TSV).replace("{n}", n), encoding="utf-8")
        if images is None or n in images:
            Image.new("RGB", (300, 100), "white").save(tmp / "images" / f"{n}.png")
    return tmp


def test_small_folder(tmp_path):
    pages = load_source("mimi-eunice", _folder(tmp_path), log=BadRecordLog())
    assert len(pages) == 2
    assert [(b.speaker, b.text, b.kind) for b in pages[0].balloons] == [
        ("M", "HELLO THERE!", "speech"), ("E", "HI.", "speech"), ("SFX", "BOOM!", "sfx")]


def test_regionless_lines_are_counted_not_errors(tmp_path, caplog):
    nobody = {"002": "{n}\nNOBODY }}no words\nNOBODY\t-1\t-1\t-1\t-1\n"}
    adapter = MimiEuniceAdapter()
    with caplog.at_level(logging.INFO, logger="ai4va_fg_dataset.adapters.mimi_eunice"):
        pages = adapter.load(
            _folder(tmp_path, txt={"002": "{n}\nNOBODY: (no words)\n"}, tsv=nobody), log=BadRecordLog()
        )
    assert len(pages) == 2 and pages[1].balloons == () and adapter.regionless_lines == 1
    assert "no region" in caplog.text


BAD = {
    "count mismatch": (
        {"002": "{n}\nM: HELLO\nE: HI.\n"}, None, "word-bubbles/002.tsv", "strip 002", "2 dialog lines but"),
    "speaker mismatch": (
        {"002": "{n}\nM: HELLO\nM: HI.\nSFX: BOOM!\n"}, None, "word-bubbles/002.tsv", "strip 002 line 1",
        "speaker 'E'"),
    "box outside": (None, {"002": TSV.replace("210\t10\t290\t60", "210\t10\t390\t60")},
                    "word-bubbles/002.tsv", "strip 002 line 2", "outside"),
    "inverted box": (None, {"002": TSV.replace("210\t10\t290\t60", "290\t10\t210\t60")},
                     "word-bubbles/002.tsv", "strip 002 line 2", "inverted"),
    "malformed row": (None, {"002": TSV.replace("210\t10\t290\t60", "210\t10\t290")},
                      "word-bubbles/002.tsv", "strip 002 row 2", "SPEAKER x1 y1 x2 y2"),
    "malformed line": ({"002": "{n}\nM HELLO\nE: HI.\nSFX: BOOM!\n"}, None,
                       "transcripts/002.txt", "strip 002 line 0", "SPEAKER: text"),
    "wrong id": ({"002": "003\nM: HELLO\nE: HI.\nSFX: BOOM!\n"}, None, "transcripts/002.txt", "strip 002",
                 "strip id"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_strip(tmp_path, case):
    txt, tsv, file, record, reason = BAD[case]
    folder = _folder(tmp_path, txt=txt, tsv=tsv)
    with pytest.raises(AnnotationError) as err:
        load_source("mimi-eunice", folder, log=BadRecordLog())
    assert (err.value.file, err.value.record) == (str(folder / file), record) and reason in err.value.reason
    log = BadRecordLog(skip_bad=True)
    pages = load_source("mimi-eunice", folder, log=log)
    assert [(r.file, r.record) for r in log.records] == [(str(folder / file), record)]
    if case in ("box outside", "inverted box"):  # only that balloon is skipped
        assert len(pages) == 2 and [b.id for b in pages[1].balloons] == ["b0", "b1"]
    else:  # the strip's text-to-region pairing is unusable: the strip is skipped
        assert [p.page_id[-3:] for p in pages] == ["001"]


def test_missing_image_and_orphan_word_bubbles(tmp_path):
    folder = _folder(tmp_path, images=("001",))
    with pytest.raises(AnnotationError) as err:
        load_source("mimi-eunice", folder, log=BadRecordLog())
    assert err.value.file == str(folder / "images" / "002.png") and err.value.record == "strip 002"
    (folder / "images" / "002.png").unlink(missing_ok=True)
    Image.new("RGB", (300, 100)).save(folder / "images" / "002.png")
    (folder / "word-bubbles" / "003.tsv").write_text(TSV.replace("{n}", "003"), encoding="utf-8")
    log = BadRecordLog(skip_bad=True)
    assert len(load_source("mimi-eunice", folder, log=log)) == 2
    assert [(r.file, r.record) for r in log.records] == [(str(folder / "word-bubbles" / "003.tsv"), "strip 003")]


def test_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="transcripts/"):
        load_source("mimi-eunice", tmp_path, log=BadRecordLog())
