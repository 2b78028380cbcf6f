"""The zoom tool: tool-call parsing and pixel-exact crops (ai4va_fg_dataset/core/zoom_tool.py)."""

import math

import numpy as np
import pytest
from PIL import Image

from ai4va_fg_dataset.core.zoom_tool import (
    ToolCall,
    ToolCallError,
    ZoomTool,
    parse_tool_calls,
)


def _page(width=200, height=120):
    """An image whose pixel (x, y) encodes its coordinates, so any crop is identifiable."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[..., 0] = np.arange(width)[None, :] % 256
    arr[..., 1] = np.arange(height)[:, None] % 256
    arr[..., 2] = 7
    return Image.fromarray(arr)


def _call(args):
    import json

    return f'<tool_call>\n{json.dumps({"name": "image_zoom_in_tool", "arguments": args})}\n</tool_call>'


def test_parse_two_good_calls_in_order():
    text = "<think>a</think>" + _call({"bbox_2d": [1, 2, 30, 40], "label": "cat"}) + "x" + _call({"bbox_2d": [5.5, 6, 7, 8]})
    calls = parse_tool_calls(text)
    assert calls == [
        ToolCall((1.0, 2.0, 30.0, 40.0), "cat", calls[0].raw),
        ToolCall((5.5, 6.0, 7.0, 8.0), None, calls[1].raw),
    ]
    assert '"cat"' in calls[0].raw


@pytest.mark.parametrize(
    "block, reason",
    [
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1,2,3,4]</tool_call>', "malformed JSON"),
        ("<tool_call>[1, 2]</tool_call>", "not an object"),
        ('<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [1,2,3,4]}}</tool_call>', "unknown tool name"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"box": [1,2,3,4]}}</tool_call>', "unknown argument"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"label": "x"}}</tool_call>', "missing required"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1,2,3]}}</tool_call>', "not a list of 4"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": ["a",2,3,4]}}</tool_call>', "not a list of 4"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [true,2,3,4]}}</tool_call>', "not a list of 4"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1,2,3,4], "label": 5}}</tool_call>', "label"),
        ('<tool_call>{"name": "image_zoom_in_tool", "arguments": "{not json"}</tool_call>', "not valid JSON"),
        ('<tool_call>{"name": "image_zoom_in_tool", "args": {"bbox_2d": [1,2,3,4]}}</tool_call>', "unexpected key"),
        ('<think>x</think><tool_call>{"name": "image_zoom_in_tool", "argu', "unclosed"),
    ],
)
def test_parse_bad_calls_give_reasons_never_raise(block, reason):
    calls = parse_tool_calls(block)
    assert len(calls) == 1
    assert isinstance(calls[0], ToolCallError)
    assert reason in calls[0].reason


def test_parse_no_calls_and_non_text():
    assert parse_tool_calls("<think>no</think><answer>A</answer>") == []
    assert isinstance(parse_tool_calls(None)[0], ToolCallError)


def test_crop_is_pixel_exact_in_original_frame():
    page = _page()
    tool = ZoomTool(page, min_size=28)
    res = tool([10, 20, 60, 70], label="hero")
    assert res.ok and res.error is None
    assert res.record.executed == (10.0, 20.0, 60.0, 70.0)
    assert res.record.crop_size == (50, 50)
    assert np.array_equal(np.asarray(res.image), np.asarray(page.crop((10, 20, 60, 70))))
    assert tool.calls == [res.record] and tool.executed_boxes == [(10.0, 20.0, 60.0, 70.0)]
    assert "Zoomed in on [10, 20, 60, 70]" in res.text()


def test_model_frame_boxes_map_back_to_original_pixels():
    page = _page(200, 120)
    # The model sees a 100x60 image (half size): [5,10,30,35] there is [10,20,60,70] here.
    tool = ZoomTool(page, model_frame_size=(100, 60))
    res = tool([5, 10, 30, 35])
    assert res.record.executed == (10.0, 20.0, 60.0, 70.0)
    assert np.array_equal(np.asarray(res.image), np.asarray(page.crop((10, 20, 60, 70))))
    # Fractional boxes round outward to whole pixels.
    res = tool([5.2, 10.2, 29.9, 34.9])
    assert res.record.executed == (10.0, 20.0, 60.0, 70.0)


def test_clamp_min_size_and_expansion_at_border():
    page = _page(200, 120)
    tool = ZoomTool(page, min_size=28)
    res = tool([150, -10, 260, 40])  # reaches outside: clamped
    assert res.ok and res.record.clamped and res.record.executed == (150.0, 0.0, 200.0, 40.0)
    res = tool([100, 50, 104, 52])  # 4x2 box: grown around the centre to 28x28
    assert res.record.expanded and res.record.executed == (88.0, 37.0, 116.0, 65.0)
    assert res.image.size == (28, 28)
    res = tool([0, 0, 3, 3])  # tiny box in a corner: grown then shifted inside
    assert res.record.executed == (0.0, 0.0, 28.0, 28.0)
    assert np.array_equal(np.asarray(res.image), np.asarray(page.crop((0, 0, 28, 28))))


@pytest.mark.parametrize(
    "box, reason",
    [
        ([float("nan"), 0, 10, 10], "non-finite"),
        ([0, 0, math.inf, 10], "non-finite"),
        ([50, 50, 10, 10], "inverted"),
        ([10, 10, 10, 40], "zero area"),
        ([300, 300, 400, 400], "outside"),
        ([-50, -50, -1, -1], "outside"),
        ([1, 2, 3], "not a list of 4 numbers"),
        ("abcd", "not a list of 4 numbers"),
        (None, "not a list of 4 numbers"),
    ],
)
def test_bad_boxes_are_structured_errors(box, reason):
    tool = ZoomTool(_page())
    res = tool(box)
    assert not res.ok and res.image is None
    assert reason in res.error
    assert res.text().startswith("Error:")
    assert tool.calls == [res.record] and tool.num_errors == 1 and tool.executed_boxes == []


def test_extreme_aspect_ratio_rejected():
    page = Image.new("RGB", (2000, 100))
    tool = ZoomTool(page, min_size=10, max_aspect_ratio=50)
    res = tool([0, 0, 1990, 10])
    assert not res.ok and "aspect ratio" in res.error
    assert tool([0, 0, 400, 10]).ok


def test_max_calls_counts_rejected_calls_too():
    tool = ZoomTool(_page(), max_calls=2)
    assert not tool([5, 5, 1, 1]).ok
    assert tool([0, 0, 50, 50]).ok
    res = tool([0, 0, 50, 50])
    assert not res.ok and "too many" in res.error
    assert len(tool.calls) == 3 and tool.num_errors == 2


def test_execute_records_parse_errors():
    tool = ZoomTool(_page())
    calls = parse_tool_calls(_call({"bbox_2d": [0, 0, 40, 40]}) + "<tool_call>{bad</tool_call>")
    results = [tool.execute(c) for c in calls]
    assert [r.ok for r in results] == [True, False]
    assert "malformed JSON" in results[1].error


def test_invalid_configuration_raises():
    with pytest.raises(ValueError, match="min_size"):
        ZoomTool(_page(), min_size=0)
    with pytest.raises(ValueError, match="model_frame_size"):
        ZoomTool(_page(), model_frame_size=(0, 10))
