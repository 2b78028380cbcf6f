"""Evaluation speed: direct vs agentic (zoom) mode, and vLLM vs HF backends.

CPU part (``cpu``, runs anywhere, offline): samples/s of the tiny Qwen2.5-VL through the ``ai4va_zoom``
agent (:mod:`lmms_eval_tasks.models.zoom_agent`, HF backend) on synthetic comic-sized pages, in
direct mode (one turn) and in agentic mode (the model zooms twice, then answers: three turns, the
prompt growing by one crop per turn). A random tiny model never calls the tool, so its generation is
wrapped: every turn decodes exactly ``--tokens`` tokens with the real model (the compute is real),
then the turn's text is replaced by a scripted tool call (turns 1-2) or answer (turn 3). The
agentic overhead ratio is ``direct samples/s / agentic samples/s``::

    python recipes/benchmarks/eval_speed.py cpu --samples 16 --tokens 32 --out build/bench/eval_speed.json

GPU part (``compare``): run the same lmms-eval job on both backends, then compare the results files
(samples / ``total_evaluation_time_seconds``; target: vLLM >= 5x)::

    ai4va-fg eval --dataset build/ai4va_fg --model vllm \\
        --model_args model=Qwen/Qwen2.5-VL-7B-Instruct,tensor_parallel_size=1,gpu_memory_utilization=0.85,max_pixels=1605632 \\
        --tasks ai4va_fg --batch_size 64 --output_path build/bench/vllm
    ai4va-fg eval --dataset build/ai4va_fg --model qwen2_5_vl \\
        --model_args pretrained=Qwen/Qwen2.5-VL-7B-Instruct,attn_implementation=sdpa,max_pixels=1605632 \\
        --tasks ai4va_fg --batch_size 1 --output_path build/bench/hf
    python recipes/benchmarks/eval_speed.py compare build/bench/vllm build/bench/hf

(``attn_implementation=flash_attention_2`` is faster on the HF side but needs FlashAttention-2:
``pip install --no-build-isolation -e ".[flash]"``; sdpa needs nothing extra.)

Results are printed and, with ``--out``, written as JSON atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from ai4va_fg_dataset.core.atomic_dir import replacing_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SCRIPT = {
    1: '<think>zoom</think><tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 10, 60, 80]}}\n</tool_call>',
    2: '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [50, 40, 100, 110]}}\n</tool_call>',
    3: "<think>done</think><answer>A</answer>",
}


def _pages(n: int, size=(800, 1200)):
    """``n`` synthetic comic-like pages (panel grid, coloured blobs), deterministic."""
    from PIL import Image, ImageDraw

    pages = []
    for i in range(n):
        im = Image.new("RGB", size, (250, 246, 236))
        d = ImageDraw.Draw(im)
        for r in range(3):
            for c in range(2):
                x0, y0 = 20 + c * 390, 20 + r * 390
                d.rectangle((x0, y0, x0 + 370, y0 + 370), outline=(0, 0, 0), width=4)
                d.ellipse((x0 + 40 + 13 * i % 200, y0 + 60, x0 + 160 + 13 * i % 200, y0 + 300), fill=(200, 60 + 20 * r, 60))
        pages.append(im)
    return pages


def _wrap_generate(model, tokenizer, tokens: int, scripted: bool):
    """Every call decodes exactly ``tokens`` tokens; with ``scripted`` the text becomes SCRIPT[n_images]."""
    import torch

    real = model.generate

    def generate(*args, **kwargs):
        kwargs = {**kwargs, "max_new_tokens": tokens, "min_new_tokens": tokens}
        out = real(*args, **kwargs)
        if not scripted:
            return out
        ids = kwargs["input_ids"]
        n_images = int((ids[0] == model.config.vision_start_token_id).sum())
        new = torch.tensor([tokenizer(SCRIPT[min(n_images, 3)], add_special_tokens=False).input_ids], dtype=ids.dtype)
        return torch.cat([ids, new], dim=1)

    model.generate = generate


def run_cpu(model_dir: str, samples: int, tokens: int, repeats: int) -> dict:
    """Direct vs agentic samples/s of the tiny model on CPU (see the module docstring)."""
    import torch

    from ai4va_fg_dataset.core.prompts import build_prompt
    from lmms_eval_tasks.models.zoom_agent import ZoomAgent

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    agent = ZoomAgent(pretrained=model_dir, backend="hf", max_turns=3, device="cpu")
    pages = _pages(samples)
    prompt = build_prompt("What is the marked character doing?", ["running", "sitting", "jumping", "sleeping"], "tool")

    def starts():
        return [([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}], [p])
                for p in pages]

    real_generate = agent.model.generate
    timings = {}
    for mode in ("direct", "agentic"):
        agent.model.generate = real_generate
        _wrap_generate(agent.model, agent.tokenizer, tokens, scripted=(mode == "agentic"))
        agent.run_conversations(starts()[:1], {"max_new_tokens": tokens}, mode == "agentic")  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            outs = agent.run_conversations(starts(), {"max_new_tokens": tokens}, tool_mode=(mode == "agentic"))
            best = min(best, time.perf_counter() - t0)
        if mode == "agentic":
            turns = [len(json.loads(o)["turns"]) for o in outs]
            assert all(t == 3 for t in turns), f"expected 3 turns per sample, got {turns}"
        timings[mode] = best
    direct_sps = samples / timings["direct"]
    agentic_sps = samples / timings["agentic"]
    return {
        "part": "cpu",
        "model": model_dir,
        "samples": samples,
        "tokens_per_turn": tokens,
        "page_size": [800, 1200],
        "direct_samples_per_s": round(direct_sps, 3),
        "agentic_samples_per_s": round(agentic_sps, 3),
        "agentic_turns_per_sample": 3,
        "agentic_overhead_ratio": round(direct_sps / agentic_sps, 3),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
                   f"{torch.get_num_threads()}",
    }


def _load_results(path: str) -> dict:
    p = Path(path)
    files = sorted(p.rglob("*_results.json")) if p.is_dir() else [p]
    if not files:
        raise SystemExit(f"error: no *_results.json under {path}")
    return json.loads(files[-1].read_text())


def run_compare(fast: str, slow: str) -> dict:
    """samples/s of two lmms-eval runs of the same tasks (e.g. vllm vs qwen2_5_vl) and their ratio."""
    out = {"part": "compare"}
    for name, path in (("a", fast), ("b", slow)):
        res = _load_results(path)
        n = sum(v.get("effective", v.get("original", 0)) if isinstance(v, dict) else int(v)
                for v in res.get("n-samples", {}).values())
        seconds = float(res["total_evaluation_time_seconds"])
        out[name] = {"results": path, "model": res.get("config", {}).get("model"), "samples": n,
                     "seconds": round(seconds, 2), "samples_per_s": round(n / seconds, 3) if seconds else None}
    if out["a"]["samples_per_s"] and out["b"]["samples_per_s"]:
        out["speedup_a_over_b"] = round(out["a"]["samples_per_s"] / out["b"]["samples_per_s"], 2)
    return out


def _write_json(path: str, obj: dict) -> None:
    with replacing_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="AI4VA-FG evaluation speed (see the module docstring).")
    sub = parser.add_subparsers(dest="part", required=True)
    cpu = sub.add_parser("cpu", help="tiny model, direct vs agentic, on CPU")
    cpu.add_argument("--model", default=str(ROOT / "build" / "tiny-qwen2.5-vl"),
                     help="tiny checkpoint folder (built with recipes/make_tiny_model.py if missing)")
    cpu.add_argument("--samples", type=int, default=16)
    cpu.add_argument("--tokens", type=int, default=32, help="tokens decoded per turn")
    cpu.add_argument("--repeats", type=int, default=3, help="timed repetitions (best is kept)")
    cpu.add_argument("--out", default=None, help="write the figures as JSON here")
    cmp_ = sub.add_parser("compare", help="samples/s of two lmms-eval runs (e.g. vllm vs qwen2_5_vl on a GPU)")
    cmp_.add_argument("a", help="results file or output folder of run A (e.g. vllm)")
    cmp_.add_argument("b", help="results file or output folder of run B (e.g. qwen2_5_vl)")
    cmp_.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.part == "cpu":
        if not (Path(args.model) / "config.json").is_file():
            import importlib.util

            spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "recipes" / "make_tiny_model.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mod.make_tiny_model(args.model)
        result = run_cpu(args.model, args.samples, args.tokens, args.repeats)
    else:
        result = run_compare(args.a, args.b)
    print(json.dumps(result, indent=2))
    if args.out:
        _write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
