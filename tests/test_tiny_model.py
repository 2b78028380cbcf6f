"""The tiny offline Qwen2.5-VL of recipes/make_tiny_model.py: builds offline, deterministic,
idempotent, loads with the Auto classes, renders tool turns with images and generates."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _recipe():
    spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "recipes" / "make_tiny_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2.5-vl"
    return _recipe().make_tiny_model(out, seed=0)


def test_deterministic_and_idempotent(tiny, tmp_path):
    recipe = _recipe()
    again = recipe.make_tiny_model(tmp_path / "again", seed=0)
    assert _digest(again) == _digest(tiny)
    other = recipe.make_tiny_model(tmp_path / "other", seed=1)
    assert _digest(other)["model.safetensors"] != _digest(tiny)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(tiny)["tokenizer.json"]
    # Re-running on an identical checkpoint leaves the files untouched.
    mtime = (again / "model.safetensors").stat().st_mtime_ns
    recipe.make_tiny_model(again, seed=0)
    assert (again / "model.safetensors").stat().st_mtime_ns == mtime
    # A different seed on the same folder rebuilds it.
    recipe.make_tiny_model(again, seed=1)
    assert _digest(again)["model.safetensors"] == _digest(other)["model.safetensors"]
    assert json.loads((again / recipe.STAMP_FILE).read_text())["seed"] == 1


def test_size_and_config(tiny):
    total = sum(p.stat().st_size for p in tiny.iterdir())
    assert total < 1_500_000
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert config["text_config"]["hidden_size"] == 64
    assert config["text_config"]["num_hidden_layers"] == 2


def test_loads_renders_tools_and_generates(tiny):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ai4va_fg_dataset.core.prompts import zoom_tool_schema

    processor = AutoProcessor.from_pretrained(tiny)
    model = AutoModelForImageTextToText.from_pretrained(tiny)
    tok = processor.tokenizer
    for special in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", "<tool_call>", "</tool_call>"):
        assert len(tok(special, add_special_tokens=False).input_ids) == 1, special
    page = Image.new("RGB", (320, 480), (240, 230, 200))
    crop = page.crop((0, 0, 120, 90))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is marked?"}]},
        {"role": "assistant", "content": '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": '
                                         '{"bbox_2d": [0, 0, 120, 90]}}\n</tool_call>'},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "the crop"}]},
    ]
    text = processor.apply_chat_template(messages, tools=[zoom_tool_schema()], add_generation_prompt=True,
                                         tokenize=False)
    assert "image_zoom_in_tool" in text and "<tools>" in text
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert "<tool_response>" in text and text.endswith("<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[page, crop], return_tensors="pt")
    # 4..16 visual tokens per image (min_pixels=3136, max_pixels=12544 after 2x2 merge).
    n_pad = int((inputs["input_ids"] == tok.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert 8 <= n_pad <= 32
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert 1 <= len(new) <= 12
    for suppressed in ("<|image_pad|>", "<|video_pad|>"):
        assert tok.convert_tokens_to_ids(suppressed) not in new
    # Tool-call tags are single non-special tokens (as in Qwen2.5): decoding keeps them.
    call = '<tool_call>\n{"name": "image_zoom_in_tool"}\n</tool_call><|im_end|>'
    assert tok.decode(tok(call).input_ids, skip_special_tokens=True) == call.replace("<|im_end|>", "")


def test_agent_tool_response_renders_like_a_tool_message(tiny):
    """The zoom agent sends crops in a user turn; with the tool template that is byte-identical to the
    `tool`-role rendering used in RARL training (and it also survives templates that drop tool images)."""
    from PIL import Image
    from transformers import AutoProcessor

    from ai4va_fg_dataset.core.zoom_tool import ZoomTool
    from lmms_eval_tasks.models.zoom_agent import tool_response_message

    processor = AutoProcessor.from_pretrained(tiny)
    page = Image.new("RGB", (200, 300), (255, 255, 255))
    tool = ZoomTool(page)
    results = [tool([0, 0, 100, 100]), tool([50, 50, 40, 40]), tool([10, 10, 90, 200])]  # ok, rejected, ok
    call = '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 100, 100]}}\n</tool_call>'
    head = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]},
            {"role": "assistant", "content": [{"type": "text", "text": call}]}]
    message, crops = tool_response_message(results)
    as_user = processor.apply_chat_template(head + [message], tokenize=False, add_generation_prompt=True)
    as_tool = processor.apply_chat_template(
        head + [{"role": "tool", "content": ([{"type": "image"}] if r.ok else []) + [{"type": "text", "text": r.text()}]}
                for r in results],
        tokenize=False, add_generation_prompt=True)
    assert as_user == as_tool
    assert len(crops) == 2 and as_user.count("<|image_pad|>") == 3 and "Error:" in as_user
