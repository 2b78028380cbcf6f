"""RARL speed benchmark: step time of RARL vs vanilla GRPO at equal batch, share of a step spent in the tool
loop, and crop + reward time per zoom call (issue 4 "Speed"; targets: tool loop < 10% of a step, crop +
reward < 2 ms per call, on GPU RARL step <= 1.3x GRPO step).

CPU, tiny offline model (default): every rollout is scripted to make one zoom call on its GT region and
then answer (a random tiny model never calls the tool), the real model still generates each turn, so the
step includes real generation, TRL's tool loop, the crop in the forward pass, rewards and the update::

    python recipes/benchmarks/rarl_speed.py --steps 6 --batch 8

GPU, Qwen2.5-VL-3B with vLLM colocate (real generations, nothing scripted)::

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/benchmarks/rarl_speed.py \\
        --model Qwen/Qwen2.5-VL-3B-Instruct --use_vllm --no_script --steps 6 --batch 16 --max_completion_length 1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

PAGE = (1000, 1400)
GT = [220.0, 300.0, 620.0, 900.0]


def make_dataset(out: Path, n: int = 16) -> str:
    """``n`` single-task pages (1000x1400, one marked box) written with the project's exporter."""
    from PIL import Image, ImageDraw

    from ai4va_fg_dataset.build.export import write_dataset
    from ai4va_fg_dataset.schema import Sample

    samples = []
    for i in range(n):
        im = Image.new("RGB", PAGE, (250, 250, 245))
        d = ImageDraw.Draw(im)
        d.rectangle(GT, outline=(0, 90, 255), width=5)
        d.ellipse([300 + i * 5, 400, 500, 700], fill=(200, 40, 40))
        samples.append(Sample(id=f"action_recognition/b{i}/0", task="action_recognition", image=im,
                              question="What is the marked character doing?", choices=["running", "sitting", "eating", "sleeping"],
                              answer="B", answer_type="choice", page_id=f"b{i}", source="bench", width=PAGE[0],
                              height=PAGE[1], bboxes=[GT]))
    write_dataset(samples, out, splits={s.page_id: "train" for s in samples})
    return str(out)


def bench_crop_reward(n: int = 2000) -> float:
    """Mean milliseconds for one zoom call (map, clamp, crop) plus the tool IoU, tool count and format rewards."""
    from PIL import Image

    from ai4va_fg_dataset.core.zoom_tool import ZoomTool
    from trl_rarl.rewards import format_score, tool_count_score, tool_iou_score

    page = Image.new("RGB", PAGE, "white")
    completion = [{"role": "assistant", "content": "<think>z</think>", "tool_calls": [
        {"type": "function", "function": {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [100, 120, 250, 360]}}}]},
        {"role": "tool", "content": "crop"}, {"role": "assistant", "content": "<think>k</think><answer>B</answer>"}]
    t = time.perf_counter()
    for k in range(n):
        tool = ZoomTool(page, model_frame_size=(420, 588), max_calls=4)
        res = tool([100 + k % 7, 120, 250, 360])
        boxes = tool.executed_boxes
        tool_iou_score(boxes, [GT])
        tool_count_score(len(boxes), 1)
        format_score(completion)
        assert res.ok
    return (time.perf_counter() - t) / n * 1000


def run_trainer(kind: str, model: str, data: str, args) -> dict:
    """Train ``args.steps`` steps of RARL or GRPO and return timing statistics (first step excluded)."""
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from ai4va_fg_dataset.core.chat_template import install_tool_chat_template
    from ai4va_fg_dataset.core.vision_frame import VisionFrame
    from trl_rarl.config import RARLConfig
    from trl_rarl.data import load_tasks, to_grpo_dataset
    from trl_rarl.rewards import grpo_reward_funcs
    from trl_rarl.trainer import RARLTrainer

    processor = install_tool_chat_template(AutoProcessor.from_pretrained(model, padding_side="left"))
    common = {"output_dir": tempfile.mkdtemp(prefix=f"bench_{kind}_"), "per_device_train_batch_size": args.batch,
                  "num_generations": args.num_generations, "max_steps": args.steps, "max_completion_length": args.max_completion_length,
                  "logging_steps": 1, "report_to": "none", "save_strategy": "no", "learning_rate": 1e-6, "seed": 0,
                  "bf16": args.use_vllm, "use_cpu": not args.use_vllm, "use_vllm": args.use_vllm, "vllm_mode": "colocate",
                  "generation_kwargs": {} if args.use_vllm else {"suppress_tokens": [5, 6]}}
    rows = load_tasks(data, ["action_recognition"], "train")
    if kind == "rarl":
        cfg = RARLConfig(**common, warm_start_steps=0, train_tasks=["action_recognition"])
        trainer = RARLTrainer(model, args=cfg, train_dataset=to_grpo_dataset(rows, "tool"), processing_class=processor)
    else:
        cfg = GRPOConfig(**common)
        trainer = GRPOTrainer(model, reward_funcs=grpo_reward_funcs("think"), args=cfg,
                              train_dataset=to_grpo_dataset(rows, "think"), processing_class=processor)
    tok = processor.tokenizer
    fw, fh = VisionFrame.from_processor(processor).resized(*PAGE)
    box = [round(GT[0] * fw / PAGE[0]), round(GT[1] * fh / PAGE[1]), round(GT[2] * fw / PAGE[0]), round(GT[3] * fh / PAGE[1])]
    payload = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}})
    call = f"<think>zoom</think><tool_call>\n{payload}\n</tool_call>"
    answer = "<think>it sits</think><answer>B</answer>"
    timers = {"tool_loop": 0.0, "generate": 0.0, "generate_in_tool_loop": 0.0}
    real_gen, in_loop = trainer._generate_single_turn, [False]

    def generate(prompt_ids, images, mm, num_generations, has_tool_images=False):
        t = time.perf_counter()
        ids, logprobs = real_gen(prompt_ids, images, mm, num_generations, has_tool_images)
        dt = time.perf_counter() - t
        timers["generate"] += dt
        if in_loop[0]:
            timers["generate_in_tool_loop"] += dt
        if args.no_script:
            return ids, logprobs
        out = []
        for i in range(len(ids)):
            p = prompt_ids[i] if len(prompt_ids) == len(ids) else prompt_ids[i // num_generations]
            after = "</tool_response>" in tok.decode(p[-60:])
            text = answer if (kind == "grpo" or after) else call
            out.append(tok(text + "<|im_end|>")["input_ids"])
        return out, None

    trainer._generate_single_turn = generate
    if kind == "rarl":
        real_loop = trainer._tool_call_loop

        def loop(*a, **k):
            t = time.perf_counter()
            in_loop[0] = True
            try:
                return real_loop(*a, **k)
            finally:
                in_loop[0] = False
                timers["tool_loop"] += time.perf_counter() - t

        trainer._tool_call_loop = loop
    trainer.train()
    steps = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    calls = [h.get("tools/call_frequency", 0.0) for h in trainer.state.log_history if "loss" in h]
    total = sum(steps)
    overhead = timers["tool_loop"] - timers["generate_in_tool_loop"]
    return {
        "kind": kind,
        "step_time_s": statistics.median(steps[1:]) if len(steps) > 1 else steps[0],  # median: robust on shared hosts
        "tool_calls_per_sample": statistics.mean(calls) if calls else 0.0,
        "tool_loop_share": overhead / total if total else 0.0,
        "tool_loop_share_with_generation": timers["tool_loop"] / total if total else 0.0,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="RARL vs GRPO step time, tool-loop share, crop+reward time per call")
    p.add_argument("--model", default=None, help="model path (default: build the tiny offline model)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=8, help="completions per step (per device)")
    p.add_argument("--num_generations", type=int, default=4)
    p.add_argument("--max_completion_length", type=int, default=256)
    p.add_argument("--use_vllm", action="store_true", help="vLLM colocate rollouts (GPU)")
    p.add_argument("--no_script", action="store_true", help="keep the model's own generations (real models)")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rarl_speed_"))
    model = a.model
    if model is None:
        model = str(work / "tiny")
        subprocess.run([sys.executable, str(REPO / "recipes/make_tiny_model.py"), "--out", model], check=True,
                       capture_output=True)
    data = make_dataset(work / "ds")
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, {platform.system()}",
        "model": a.model or "tiny Qwen2.5-VL (recipes/make_tiny_model.py)",
        "batch": a.batch, "num_generations": a.num_generations, "steps": a.steps,
        "crop_reward_ms_per_call": bench_crop_reward(),
    }
    grpo = run_trainer("grpo", model, data, a)
    rarl = run_trainer("rarl", model, data, a)
    result.update({"grpo": grpo, "rarl": rarl, "rarl_over_grpo_step": rarl["step_time_s"] / grpo["step_time_s"]})
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
