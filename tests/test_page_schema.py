"""Page model helpers, the sample schema's validation, prompts and the zoom tool schema."""

import pytest

from ai4va_fg_dataset.core.prompts import build_prompt, zoom_tool_schema
from ai4va_fg_dataset.errors import AnnotationError, BadRecordLog
from ai4va_fg_dataset.page import Entity, Page, Panel, containing_panel
from ai4va_fg_dataset.schema import TASKS, Sample, features


def test_containing_panel_picks_largest_overlap():
    panels = (Panel("p0", (0, 0, 100, 100)), Panel("p1", (100, 0, 200, 100)))
    assert containing_panel((10, 10, 50, 50), panels) == "p0"
    assert containing_panel((90, 10, 150, 50), panels) == "p1"  # 50/60 inside p1
    assert containing_panel((0, 150, 10, 160), panels) is None


def test_page_accessors():
    page = Page(
        "synthetic/b/1", "synthetic", "x.png", 10, 10,
        panels=(Panel("p0", (0, 0, 5, 5)),),
        entities=(Entity("c", (0, 0, 1, 1)), Entity("o", (1, 1, 2, 2), kind="object")),
    )
    assert [e.id for e in page.characters] == ["c"]
    assert page.panel("p0").bbox == (0, 0, 5, 5)
    with pytest.raises(KeyError, match="no panel 'zz'"):
        page.panel("zz")


def test_bad_record_log_strict_and_skip():
    err = AnnotationError("a.json", "annotation id=3", "bbox [1, 1, 0, 0] is inverted")
    assert str(err) == "a.json: annotation id=3: bbox [1, 1, 0, 0] is inverted"
    with pytest.raises(AnnotationError):
        BadRecordLog().report(err)
    log = BadRecordLog(skip_bad=True)
    log.report(err)
    assert log.to_json() == [{"file": "a.json", "record": "annotation id=3", "reason": err.reason}]


def _sample(**kw):
    base = {"id": "x", "task": "depth_comparison", "image": b"", "question": "q", "answer": "B",
            "answer_type": "choice", "page_id": "p", "source": "s", "width": 1, "height": 1, "choices": ["a", "b"]}
    base.update(kw)
    return Sample(**base)


def test_sample_validation():
    assert _sample().to_row()["choices"] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        _sample(task="nope")
    with pytest.raises(ValueError, match="answer 'C' is not one of"):
        _sample(answer="C")
    with pytest.raises(ValueError, match="bad grounding bbox"):
        _sample(bboxes=[[5, 5, 1, 1]])


def test_features_cover_the_row():
    assert set(features()) == set(_sample().to_row())
    assert len(TASKS) == 8 and TASKS[-1] == "speaker_attribution"  # the paper's seven + issue 11's


def test_prompts_and_tool_schema():
    text = build_prompt("Which is closer?", ["the first", "the second"], "direct")
    assert text.splitlines()[1:3] == ["Options:", "A. the first"]
    assert text.endswith("<answer> </answer> tags.")
    assert "<tool_call>" in build_prompt("q", None, "tool")
    with pytest.raises(ValueError, match="unknown prompt mode 'x'"):
        build_prompt("q", None, "x")
    schema = zoom_tool_schema()
    assert schema["function"]["name"] == "image_zoom_in_tool"
    assert schema["function"]["parameters"]["required"] == ["bbox_2d"]
