"""RARLTrainer end to end on CPU with the tiny offline Qwen2.5-VL (trl_rarl/trainer.py).

The random tiny model never writes a tool call, so generation is scripted per turn (as TRL's own tests
do): the real model still generates (its tokens are discarded), and everything after it is real: TRL's
tool loop executes the zoom environment, the crop goes into the next turn and the forward pass, the
rewards and metrics are computed and logged.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
REPO = Path(__file__).resolve().parents[1]
PAGE = (280, 392)
GT = [60.0, 80.0, 200.0, 300.0]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_model_rarl") / "tiny"
    subprocess.run([sys.executable, str(REPO / "recipes" / "make_tiny_model.py"), "--out", str(out)], check=True,
                   capture_output=True)
    return str(out)


def _page(seed):
    im = Image.new("RGB", PAGE, (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.rectangle(GT, outline=(0, 90, 255), width=3)
    d.ellipse([100 + seed, 120, 160 + seed, 200], fill=(200, 40, 40))
    return im


def make_samples():
    from ai4va_fg_dataset.schema import Sample

    out = []
    for i in range(4):
        common = {"page_id": f"p{i}", "source": "test", "width": PAGE[0], "height": PAGE[1], "image": _page(i)}
        out.append(Sample(id=f"action_recognition/p{i}/0", task="action_recognition", question="What is the marked character doing?",
                          choices=["running", "sitting", "eating", "sleeping"], answer="B", answer_type="choice",
                          bboxes=[GT], **common))
        out.append(Sample(id=f"depth_comparison/p{i}/0", task="depth_comparison", question="Which marked entity is closer?",
                          choices=["1", "2"], answer="A", answer_type="choice",
                          bboxes=[GT, [10.0, 10.0, 50.0, 60.0]], **common))
        out.append(Sample(id=f"character_counting/p{i}/0", task="character_counting", question="How many times does Muzo appear?",
                          answer="2", answer_type="number", bboxes=[GT, [10.0, 10.0, 50.0, 60.0]], panel_scope="multi", **common))
    return out


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    from ai4va_fg_dataset.build.export import write_dataset

    out = tmp_path_factory.mktemp("ai4va_fg") / "ds"
    samples = make_samples()
    write_dataset(samples, out, splits={s.page_id: "train" for s in samples})
    return str(out)


def _config(tmp_path, **kw):
    from trl_rarl.config import RARLConfig

    base = {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4, "num_generations": 2, "max_steps": 2,
                "max_completion_length": 200, "logging_steps": 1, "report_to": "none", "use_cpu": True, "bf16": False,
                "save_strategy": "no", "learning_rate": 1e-3, "warm_start_steps": 1, "train_tasks": ["action_recognition"],
                "generation_kwargs": {"suppress_tokens": [5, 6]}, "seed": 0}
    base.update(kw)
    return RARLConfig(**base)


def _train_set(dataset_dir, tasks):
    from trl_rarl.data import load_tasks, to_grpo_dataset

    return to_grpo_dataset(load_tasks(dataset_dir, tasks, "train"), "tool")


def script_turns(trainer, first_turns, final):
    """Replace the generated tokens: ``first_turns[i % len]`` for the i-th rollout's first turn, ``final`` after a
    tool response. The real generation still runs (its output is discarded)."""
    tok = trainer.processing_class.tokenizer
    real = trainer._generate_single_turn

    def scripted(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        ids, _ = real(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        out = []
        for i in range(len(ids)):
            prompt = prompt_ids[i] if len(prompt_ids) == len(ids) else prompt_ids[i // num_generations]
            after_tool = "</tool_response>" in tok.decode(prompt[-80:])
            text = final if after_tool else first_turns[i % len(first_turns)]
            out.append(tok(text + "<|im_end|>")["input_ids"])
        return out, None

    trainer._generate_single_turn = scripted


def _call(args):
    return "<think>zoom in</think><tool_call>\n" + json.dumps({"name": "image_zoom_in_tool", "arguments": args}) + "\n</tool_call>"


def test_two_step_run_executes_crops_rewards_and_logs(tiny_model, dataset_dir, tmp_path):
    from transformers import AutoProcessor

    from ai4va_fg_dataset.core.vision_frame import VisionFrame
    from trl_rarl.trainer import RARLTrainer

    processor = AutoProcessor.from_pretrained(tiny_model, padding_side="left")
    args = _config(tmp_path)
    trainer = RARLTrainer(tiny_model, args=args, train_dataset=_train_set(dataset_dir, ["action_recognition"]),
                          processing_class=processor)
    # the GT box in the frame the model sees (Qwen2.5-VL's resized page)
    fw, fh = VisionFrame.from_processor(processor).resized(*PAGE)
    box = [round(GT[0] * fw / PAGE[0]), round(GT[1] * fh / PAGE[1]), round(GT[2] * fw / PAGE[0]), round(GT[3] * fh / PAGE[1])]
    good = _call({"bbox_2d": box, "label": "hero"})
    malformed = '<think>zoom</think><tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2,</tool_call>'
    wrong_arg = _call({"box": box})
    script_turns(trainer, [good, malformed, wrong_arg, good], "<think>it sits</think><answer>B</answer>")
    grids = []
    real_logps = trainer._get_per_token_logps_and_entropies

    def spy(model, input_ids, attention_mask, logits_to_keep, batch_size=None, **kw):
        if kw.get("image_grid_thw") is not None:
            grids.append((kw["image_grid_thw"].shape[0], list(kw.get("num_images") or [])))
        return real_logps(model, input_ids, attention_mask, logits_to_keep, batch_size, **kw)

    trainer._get_per_token_logps_and_entropies = spy
    trainer.train()

    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    assert [h["schedule/phase"] for h in logs] == [0.0, 1.0]  # warm start then full reward
    for h in logs:
        assert h["zoom/ok_calls_per_sample"] == pytest.approx(0.5)  # 2 good of 4 rollouts
        assert h["zoom/parse_failures_per_sample"] == pytest.approx(0.5)  # malformed + wrong argument
        assert h["zoom/samples_with_parse_failure"] == pytest.approx(0.5)
        assert h["zoom/iou"] > 0.9 and h["zoom/iou_first"] > 0.9 and h["zoom/overlap"] > 0.9
        assert 0 < h["zoom/crop_area_ratio"] < 1 and h["zoom/crop_visual_tokens"] > 0
        assert h["tools/call_frequency"] > 0 and h["completions/mean_length"] > 0
        assert h["zoom/undelivered_calls_per_sample"] == 0  # nothing rolled back: every recorded call was seen
    # warm start: format + tool count only -> (2 + 0 + 0 + 2) / 4
    assert logs[0]["reward"] == pytest.approx(1.0)
    assert logs[0]["rewards/accuracy_reward/mean"] == pytest.approx(0.75)  # logged although not weighted yet
    # full: good = 1 + 1 + 2 * (1 + IoU), malformed = 0, wrong argument = accuracy 1 only
    iou = logs[1]["zoom/iou"]
    assert logs[1]["reward"] == pytest.approx((2 * (2 + 2 * (1 + iou)) + 0 + 1) / 4, rel=1e-4)
    # per-rollout rewards: bad tool calls score 0 format and 0 tool reward
    comps, fmt = list(trainer._logs["completion"]), list(trainer._logs["rewards"]["format_reward"])
    tool_iou = list(trainer._logs["rewards"]["tool_iou_reward"])
    for comp, f, t in zip(comps, fmt, tool_iou):
        text = json.dumps(comp, default=str)
        if '"box"' in text or "[1, 2,</tool_call>" in text:
            assert f == 0.0 and t == 0.0
        else:
            assert f == 1.0 and t > 0.9
            tool_msgs = [m for m in comp if m["role"] == "tool"]
            assert isinstance(tool_msgs[0]["content"], list) and tool_msgs[0]["content"][0]["type"] == "image"
    # crops reached the forward pass: more image grids than pages, per-rollout image counts 1 or 2
    assert grids and any(n > 4 for n, _ in grids)
    assert any(2 in counts for _, counts in grids)


def test_crops_rolled_back_for_length_earn_no_tool_reward(tiny_model, dataset_dir, tmp_path):
    """A completion budget that fits the tool call but not the crop: TRL executes the tool, then rolls its
    result back; the crop was never seen, so it earns no IoU / count reward and is logged as undelivered."""
    from transformers import AutoProcessor

    from ai4va_fg_dataset.core.vision_frame import VisionFrame
    from trl_rarl.trainer import RARLTrainer

    processor = AutoProcessor.from_pretrained(tiny_model, padding_side="left")
    fw, fh = VisionFrame.from_processor(processor).resized(*PAGE)
    box = [round(GT[0] * fw / PAGE[0]), round(GT[1] * fh / PAGE[1]), round(GT[2] * fw / PAGE[0]), round(GT[3] * fh / PAGE[1])]
    good = _call({"bbox_2d": box, "label": "hero"})
    budget = len(processor.tokenizer(good + "<|im_end|>")["input_ids"]) + 2  # the call fits, the crop does not
    args = _config(tmp_path, max_completion_length=budget, max_steps=1, warm_start_steps=0)
    trainer = RARLTrainer(tiny_model, args=args, train_dataset=_train_set(dataset_dir, ["action_recognition"]),
                          processing_class=processor)
    script_turns(trainer, [good], "<think>it sits</think><answer>B</answer>")
    trainer.train()
    (h,) = [h for h in trainer.state.log_history if "loss" in h]
    assert h["zoom/undelivered_calls_per_sample"] == pytest.approx(1.0)  # every rollout's crop was rolled back
    assert h["zoom/ok_calls_per_sample"] == 0.0
    assert list(trainer._logs["rewards"]["tool_iou_reward"]) == [0.0] * 4
    assert list(trainer._logs["rewards"]["tool_count_reward"]) == [0.0] * 4  # 0 seen crops for 1 GT region
    for comp in trainer._logs["completion"]:
        assert not [m for m in comp if m["role"] == "tool"]  # TRL removed the tool message


def test_curriculum_warm_start_and_resume_keep_the_stage(tiny_model, dataset_dir, tmp_path):
    from transformers import AutoProcessor

    from trl_rarl.rewards import rarl_reward_funcs
    from trl_rarl.trainer import RARLTrainer

    seen = []

    def task_spy(completions, task, trainer_state, **kwargs):
        seen.append((trainer_state.global_step, tuple(task)))
        return [0.0] * len(completions)

    def run(max_steps, resume=None):
        args = _config(tmp_path, per_device_train_batch_size=2, max_steps=max_steps, max_completion_length=32,
                       train_tasks=["action_recognition", "depth_comparison", "character_counting"],
                       curriculum_stages=["action_recognition:1", "depth_comparison:1", "all:2"],
                       save_strategy="steps", save_steps=2, reward_weights=[1.0, 1.0, 1.0, 1.0, 0.0])
        processor = AutoProcessor.from_pretrained(tiny_model, padding_side="left")
        train = _train_set(dataset_dir, args.train_tasks)
        trainer = RARLTrainer(tiny_model, reward_funcs=rarl_reward_funcs(args) + [task_spy], args=args,
                              train_dataset=train, processing_class=processor)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    first = run(3)
    logs = [h for h in first.state.log_history if "loss" in h]
    assert [h["schedule/phase"] for h in logs] == [0.0, 1.0, 1.0]
    assert [h["schedule/stage"] for h in logs] == [0.0, 1.0, 2.0]
    by_step = {}
    for step, tasks in seen:
        by_step.setdefault(step, set()).update(tasks)
    assert by_step[0] == {"action_recognition"}
    assert by_step[1] == {"depth_comparison"}
    assert by_step[2] <= {"action_recognition", "depth_comparison", "character_counting"}
    ckpt = Path(first.args.output_dir) / "checkpoint-2"
    assert ckpt.is_dir()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["stateful_callbacks"]["ScheduleCallback"]["args"]["stage"] == 2

    seen.clear()
    resumed = run(4, resume=str(ckpt))
    cb = next(c for c in resumed.callback_handler.callbacks if type(c).__name__ == "ScheduleCallback")
    assert cb.resumed_stage == 2
    assert sorted({s for s, _ in seen}) == [2, 3]
    logs = [h for h in resumed.state.log_history if "loss" in h and h["step"] > 2]
    assert [h["schedule/stage"] for h in logs] == [2.0, 2.0]
    assert [h["schedule/phase"] for h in logs] == [1.0, 1.0]


def test_zoom_environment_contract():
    """reset(**row) + image_zoom_in_tool: model-frame boxes, crop as an image block, errors as text, records."""
    import numpy as np
    from transformers.utils import get_json_schema

    from ai4va_fg_dataset.core.prompts import zoom_tool_schema
    from ai4va_fg_dataset.core.vision_frame import VisionFrame
    from trl_rarl.environment import ZoomEnvironment

    schema = get_json_schema(ZoomEnvironment.image_zoom_in_tool)["function"]
    ref = zoom_tool_schema()["function"]
    assert schema["name"] == ref["name"] == "image_zoom_in_tool"
    assert set(schema["parameters"]["properties"]) == set(ref["parameters"]["properties"])
    assert schema["parameters"]["required"] == ref["parameters"]["required"] == ["bbox_2d"]
    assert schema["parameters"]["properties"]["bbox_2d"]["items"]["type"] == "number"

    frame = VisionFrame(14, 2, 3136, 12544)
    env = ZoomEnvironment(frame, min_size=28, max_calls=2)
    page = _page(0)
    env.reset(image=page, bboxes=[GT], width=PAGE[0], height=PAGE[1], id="x")
    fw, fh = frame.resized(*PAGE)
    sx, sy = PAGE[0] / fw, PAGE[1] / fh
    out = env.image_zoom_in_tool([30, 40, 60, 90], label="hero")
    assert out[0]["type"] == "image" and out[1]["type"] == "text"
    expected = (int(30 * sx), int(40 * sy), -(-60 * sx // 1), -(-90 * sy // 1))
    assert env.calls[0].executed == tuple(float(v) for v in expected)
    assert np.array_equal(np.asarray(out[0]["image"]), np.asarray(page.crop(tuple(int(v) for v in expected))))
    assert env.crop_tokens == [frame.visual_tokens(*out[0]["image"].size)]
    assert env.image_zoom_in_tool([5, 5, 1, 1]).startswith("Error:")  # inverted
    assert "too many" in env.image_zoom_in_tool([0, 0, 50, 50])  # max_calls=2 reached
    assert [c.ok for c in env.calls] == [True, False, False]
    env.reset(image=None, bboxes=[], id="broken")  # unreadable page: no crash, an error to the model
    assert env.image_zoom_in_tool([0, 0, 5, 5]).startswith("Error: no readable page image")
    assert env.calls == []


def test_calls_rolled_back_by_trl_are_dropped_before_scoring():
    """TRL removes the tool messages of a turn that would overflow max_completion_length after running the
    tool; those crops were never seen, so they leave the environment's records (and the rewards)."""
    from ai4va_fg_dataset.core.vision_frame import VisionFrame
    from trl_rarl.environment import ZoomEnvironment

    env = ZoomEnvironment(VisionFrame(14, 2, 3136, 12544), min_size=28, max_calls=None)
    env.reset(image=_page(0), bboxes=[GT], id="x")
    first = env.image_zoom_in_tool([30, 40, 60, 90])
    rejected = env.image_zoom_in_tool([5, 5, 1, 1])
    env.image_zoom_in_tool([0, 0, 40, 40])  # executed, then rolled back by TRL
    assert len(env.calls) == 3 and len(env.crop_tokens) == 2
    completion = [
        {"role": "assistant", "content": "<think>a</think>", "tool_calls": ["..."]},
        {"role": "tool", "name": "image_zoom_in_tool", "content": first},
        {"role": "assistant", "content": "<think>b</think>", "tool_calls": ["...", "..."]},
        {"role": "tool", "name": "image_zoom_in_tool", "content": rejected},
        # a call with wrong argument names never reaches the environment: TRL writes its own error
        {"role": "tool", "name": "image_zoom_in_tool", "content": "{'error': \"unexpected keyword 'box'\"}"},
        {"role": "assistant", "content": "<think>c</think>", "tool_calls": ["..."]},  # its result was dropped
    ]
    assert env.drop_undelivered(completion) == 1
    assert [c.ok for c in env.calls] == [True, False] and len(env.crop_tokens) == 1 and env.undelivered == 1
    assert env.drop_undelivered(completion) == 0 and env.undelivered == 1  # idempotent
    assert env.drop_undelivered("plain text completion") == 0 and len(env.calls) == 2
