"""The Qwen2.5-VL tool-calling chat template (ai4va_fg_dataset/core/templates/qwen2_5_vl_tool.jinja).

Rendered prompts and the processor's pixel values must agree for 0, 1 and 2 returned crops: one
``<|image_pad|>`` run per image, as many pad tokens as ``image_grid_thw`` asks for.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def processor(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_model_ct") / "tiny"
    subprocess.run([sys.executable, str(REPO / "recipes" / "make_tiny_model.py"), "--out", str(out)], check=True,
                   capture_output=True)
    from transformers import AutoProcessor

    from ai4va_fg_dataset.core.chat_template import install_tool_chat_template

    return install_tool_chat_template(AutoProcessor.from_pretrained(str(out), padding_side="left"))


def _conversation(n_crops, page, crop):
    msgs = [{"role": "user", "content": [{"type": "image", "image": page}, {"type": "text", "text": "Who is it?"}]}]
    for i in range(n_crops):
        msgs.append(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": f"<think>look {i}</think>"}],
                "tool_calls": [
                    {"type": "function", "function": {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}}
                ],
            }
        )
        msgs.append({"role": "tool", "name": "image_zoom_in_tool",
                     "content": [{"type": "image", "image": crop}, {"type": "text", "text": f"crop {i}"}]})
    return msgs


@pytest.mark.parametrize("n_crops", [0, 1, 2])
def test_prompt_and_pixel_values_agree(processor, n_crops):
    from ai4va_fg_dataset.core.prompts import zoom_tool_schema

    page, crop = Image.new("RGB", (280, 392), "white"), Image.new("RGB", (90, 60), "red")
    msgs = _conversation(n_crops, page, crop)
    text = processor.apply_chat_template(msgs, tools=[zoom_tool_schema()], tokenize=False, add_generation_prompt=True)
    out = processor.apply_chat_template(msgs, tools=[zoom_tool_schema()], tokenize=True, return_dict=True,
                                        add_generation_prompt=True)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 1 + n_crops
    grid = out["image_grid_thw"]
    assert grid.shape[0] == 1 + n_crops
    merge = processor.image_processor.merge_size ** 2
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert sum(1 for t in out["input_ids"][0] if t == pad_id) == int(grid.prod(dim=1).sum()) // merge
    assert out["pixel_values"].shape[0] == int(grid.prod(dim=1).sum())
    # every crop sits inside a tool response, in order
    assert text.count("<tool_response>\n<|vision_start|>") == n_crops
    for i in range(n_crops):
        assert f"crop {i}\n</tool_response>" in text
    call = '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}\n</tool_call><|im_end|>'
    assert text.count(call) == n_crops
    assert text.endswith("<|im_start|>assistant\n")


def test_tools_in_system_prompt_and_default_system(processor):
    from ai4va_fg_dataset.core.prompts import zoom_tool_schema

    msgs = [{"role": "user", "content": "hi"}]
    with_tools = processor.apply_chat_template(msgs, tools=[zoom_tool_schema()], tokenize=False)
    assert with_tools.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert '"name": "image_zoom_in_tool"' in with_tools and "</tools>" in with_tools
    plain = processor.apply_chat_template(msgs, tokenize=False)
    assert plain == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    sys_list = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}] + msgs
    assert processor.apply_chat_template(sys_list, tokenize=False).startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_trl_requirements_and_response_parsing(processor):
    from trl.chat_template_utils import (
        has_generation_markers,
        is_chat_template_prefix_preserving,
        is_chat_template_stop_token_trained,
        parse_response,
        supports_tool_calling,
    )

    assert supports_tool_calling(processor)
    assert is_chat_template_prefix_preserving(processor)
    assert has_generation_markers(processor.chat_template)
    assert is_chat_template_stop_token_trained(processor)
    tok = processor.tokenizer
    prefix = tok("<|im_start|>assistant\n")["input_ids"]
    ids = tok('<think>look</think>\n<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
              "\n</tool_call><|im_end|>")["input_ids"]
    parsed = parse_response(tok, ids, prefix=prefix)
    assert parsed["content"] == "<think>look</think>"
    assert parsed["tool_calls"][0]["function"] == {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}
    parsed = parse_response(tok, tok("<think>a</think><answer>B</answer><|im_end|>")["input_ids"], prefix=prefix)
    assert parsed == {"role": "assistant", "content": "<think>a</think><answer>B</answer>"}


def test_template_file_is_the_exported_string():
    from ai4va_fg_dataset.core.chat_template import QWEN2_5_VL_TOOL_TEMPLATE, tool_chat_template

    path = REPO / "ai4va_fg_dataset" / "core" / "templates" / "qwen2_5_vl_tool.jinja"
    assert tool_chat_template() == QWEN2_5_VL_TOOL_TEMPLATE == path.read_text(encoding="utf-8")
