"""Distil SFT-R reasoning trajectories from a strong VLM, keeping only correct ones (method.md section 4).

For each training question the teacher (any provider of ``ai4va_fg_dataset.core.llm``: OpenAI or an
OpenAI-compatible server such as a local ``vllm serve``, or Gemini) answers in ``think`` mode; a reply is
kept when it is well formed (``<think>...</think><answer>...</answer>``) and its answer is correct
(``ai4va_fg_dataset.core.scoring.score_answer``: the check the RL accuracy reward and the evaluation metric
make). Up to ``--attempts`` tries per question. Output: JSONL of
``{"id", "task", "trajectory"}`` written atomically, plus a summary of kept / wrong / malformed /
failed requests per task; ``recipes/sft.py --variant sft_r --trajectories FILE`` trains on it.

Usage::

    python recipes/distill_sft_r.py --dataset_path build/ai4va_fg --provider gemini \\
        --model gemini-2.5-pro --out build/sft_r_trajectories.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ai4va_fg_dataset.core.atomic_dir import replacing_file
from ai4va_fg_dataset.core.images import decode_image
from ai4va_fg_dataset.core.prompts import build_prompt
from ai4va_fg_dataset.core.scoring import score_answer
from trl_rarl.data import load_tasks
from trl_rarl.recipe_setup import CLOSED_TASKS
from trl_rarl.rewards import format_score

logger = logging.getLogger("distill_sft_r")


def distill(rows, client, attempts: int = 1, judge=None) -> tuple[list[dict], Counter]:
    """Ask ``client`` each question in ``think`` mode and keep the first correct, well-formed reply.

    Args:
        rows: AI4VA-FG rows (``id``, ``task``, ``image``, ``question``, ``choices``, ``answer``, ``answer_type``).
        client: ``generate(prompt, images) -> str``.
        attempts: tries per question.
        judge: optional ``judge(question, reference, prediction) -> bool`` for open-ended answers
            (``ai4va_fg_dataset.core.scoring.score_answer``; without one, the normalised exact match).

    Returns:
        The kept records and counts ``{"<task>/kept" | "/wrong" | "/judge_failure" | "/malformed" | "/error": n}``.
        A request that raises is counted as an error and the question is retried / skipped, never fatal.
    """
    kept, stats = [], Counter()
    for row in rows:
        prompt = build_prompt(row["question"], row["choices"], "think")
        image = decode_image(row["image"])
        for _ in range(attempts):
            try:
                reply = client.generate(prompt, [image])
            except Exception as exc:  # noqa: BLE001  (network/API errors: count, go on)
                logger.warning("%s: request failed: %s", row["id"], exc)
                stats[f"{row['task']}/error"] += 1
                continue
            if not format_score(reply, "think"):
                stats[f"{row['task']}/malformed"] += 1
                continue
            verdict = score_answer(reply, answer_type=row["answer_type"], key=row["answer"], choices=row["choices"],
                                   question=row["question"], judge=judge)
            if verdict.score <= 0:
                stats[f"{row['task']}/{'judge_failure' if verdict.judge_failure else 'wrong'}"] += 1
                continue
            kept.append({"id": row["id"], "task": row["task"], "trajectory": reply.strip()})
            stats[f"{row['task']}/kept"] += 1
            break
    return kept, stats


def write_jsonl(records: list[dict], path: str) -> None:
    """Write ``records`` as JSONL atomically (:func:`~ai4va_fg_dataset.core.atomic_dir.replacing_file`)."""
    with replacing_file(path) as tmp:
        tmp.write_text("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when nothing was kept)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset_path", required=True, help="built AI4VA-FG dataset folder")
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--split", default="train")
    p.add_argument("--tasks", default=",".join(CLOSED_TASKS),
                   help="comma-separated tasks")
    p.add_argument("--provider", default="gemini", help="teacher provider of ai4va_fg_dataset.core.llm (openai, gemini)")
    p.add_argument("--model", default=None, help="teacher model (provider default if omitted)")
    p.add_argument("--base_url", default=None, help="OpenAI-compatible server URL")
    p.add_argument("--attempts", type=int, default=1, help="tries per question")
    p.add_argument("--max_samples", type=int, default=None, help="first N rows only")
    p.add_argument("--timeout", type=float, default=None, help="seconds per request (default: core.llm's 60)")
    p.add_argument("--max_retries", type=int, default=None,
                   help="retries of a failed request, with exponential backoff (default: core.llm's 3)")
    p.add_argument("--temperature", type=float, default=None,
                   help="teacher sampling temperature (default 0; raise it with --attempts > 1 so tries differ)")
    p.add_argument("--cache_dir", default=None,
                   help="reply cache folder: a re-run with the same teacher, settings and question costs no request "
                        "(with --temperature 0 every attempt gets the same cached reply)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ai4va_fg_dataset.core.llm import make_client
    from trl_rarl.rewards import make_llm_judge

    rows = load_tasks(a.dataset_path, [t for t in a.tasks.split(",") if t], a.split, max_rows=a.max_samples)
    settings = {k: v for k, v in (("timeout", a.timeout), ("max_retries", a.max_retries),
                                  ("temperature", a.temperature), ("cache_dir", a.cache_dir)) if v is not None}
    client = make_client(a.provider, a.model, a.base_url, **settings)
    # open answers are judged by the evaluation's judge (AI4VA_FG_JUDGE_* settings, core.llm.Judge)
    judge = make_llm_judge() if any(r["answer_type"] == "open" for r in rows) else None
    kept, stats = distill(rows, client, a.attempts, judge)
    write_jsonl(kept, a.out)
    logger.info("kept %d of %d questions -> %s; %s", len(kept), len(rows), a.out, dict(sorted(stats.items())))
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
