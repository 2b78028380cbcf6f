"""AI4VA-FG rows -> TRL training rows (method.md section 4).

* :func:`load_tasks` loads and concatenates task configs of a built AI4VA-FG dataset folder
  (``datasets.load_dataset(DIR, task, split=...)``, columns of :mod:`ai4va_fg_dataset.schema`),
  optionally keeping only the first ``max_rows`` rows.
* :func:`to_grpo_dataset` adds the conversational ``prompt`` (``build_prompt`` in the chosen mode);
  TRL inserts the ``image`` column as the first image block and passes every column to the rewards
  and to the zoom environment's ``reset``. With ``info_gap_max_pixels`` the model sees a downsampled
  page and ``image_full`` keeps the original for cropping (method.md section 5).
* :func:`to_sft_dataset` builds prompt/completion rows for SFT-S (``<answer>X</answer>``) and SFT-R
  (a distilled ``<think>...</think><answer>X</answer>`` trajectory per sample id).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

from ai4va_fg_dataset.core.prompts import build_prompt

logger = logging.getLogger(__name__)


def load_tasks(path: str | os.PathLike, tasks: Sequence[str], split: str = "train", max_rows: int | None = None):
    """Load ``split`` of every task in ``tasks`` from a built dataset folder and concatenate them.

    ``max_rows`` keeps only the first that many rows of the result (smoke runs; ``None`` or 0: all).

    Raises:
        ValueError: no task given, or none of them has rows in ``split`` (the message names the folder).
    """
    from datasets import concatenate_datasets, load_dataset

    if not tasks:
        raise ValueError("load_tasks: no task given")
    parts = []
    for task in tasks:
        try:
            ds = load_dataset(str(path), task, split=split)
        except ValueError as exc:  # a task/split the folder does not have: say so, continue with the rest
            logger.warning("dataset %s has no %s/%s: %s", path, task, split, exc)
            continue
        if len(ds):
            parts.append(ds)
        else:
            logger.warning("dataset %s: task %s has no %s rows", path, task, split)
    if not parts:
        raise ValueError(f"dataset {path}: none of the tasks {list(tasks)} has rows in split {split!r}")
    rows = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if max_rows:
        rows = rows.select(range(min(max_rows, len(rows))))
    return rows


def _prompt_row(row: dict, mode: str) -> dict:
    return {"prompt": [{"role": "user", "content": build_prompt(row["question"], row["choices"], mode)}]}


def to_grpo_dataset(dataset, mode: str = "tool", info_gap_max_pixels: int | None = None):
    """Add the conversational ``prompt`` column (and the information-gap page pair when asked).

    Args:
        dataset: AI4VA-FG rows (``datasets.Dataset``).
        mode: prompt mode of :func:`ai4va_fg_dataset.core.prompts.build_prompt`.
        info_gap_max_pixels: downsample ``image`` to at most this many pixels, keeping the original in
            ``image_full`` (the zoom environment crops from it). ``None``: unchanged.
    """
    out = dataset.map(lambda r: _prompt_row(r, mode), desc="prompts")
    if info_gap_max_pixels:
        from datasets import Image as ImageFeature

        from ai4va_fg_dataset.core.images import decode_image

        from .environment import downsample_to_pixels

        def shrink(row):
            page = decode_image(row["image"])
            return {"image_full": page, "image": downsample_to_pixels(page, info_gap_max_pixels)}

        out = out.map(shrink, desc="information gap").cast_column("image_full", ImageFeature())
    return out


def load_trajectories(path: str | os.PathLike) -> dict[str, str]:
    """Read distilled SFT-R trajectories (JSONL of ``{"id": ..., "trajectory": ...}``, see ``recipes/distill_sft_r.py``).

    Raises:
        ValueError: a line that is not JSON or lacks ``id``/``trajectory`` (the message names file and line).
    """
    out = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[str(rec["id"])] = str(rec["trajectory"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a trajectory record ({exc})") from exc
    return out


def to_sft_dataset(dataset, variant: str = "sft_s", trajectories: dict[str, str] | None = None):
    """Prompt/completion rows for TRL's ``SFTTrainer`` (method.md section 4).

    * ``sft_s``: prompt in ``direct`` mode, completion ``<answer>{answer}</answer>``;
    * ``sft_r``: prompt in ``think`` mode, completion the distilled trajectory of the sample's ``id``;
      samples without a trajectory are dropped (counted in the log: only correct ones were kept).

    Raises:
        ValueError: unknown ``variant``, ``sft_r`` without trajectories, or no sample left.
    """
    if variant not in ("sft_s", "sft_r"):
        raise ValueError(f"unknown SFT variant {variant!r}; expected 'sft_s' or 'sft_r'")
    if variant == "sft_r":
        if not trajectories:
            raise ValueError("SFT-R needs distilled trajectories (recipes/distill_sft_r.py)")
        before = len(dataset)
        dataset = dataset.filter(lambda r: r["id"] in trajectories, desc="rows with a trajectory")
        logger.info("SFT-R: %d of %d samples have a distilled trajectory", len(dataset), before)
        if not len(dataset):
            raise ValueError("SFT-R: no sample of the dataset has a distilled trajectory (ids do not match?)")

    def row(r):
        mode = "direct" if variant == "sft_s" else "think"
        text = f"<answer>{r['answer']}</answer>" if variant == "sft_s" else trajectories[r["id"]]
        return {**_prompt_row(r, mode), "completion": [{"role": "assistant", "content": text}]}

    keep = {"prompt", "completion", "image"}
    return dataset.map(row, remove_columns=[c for c in dataset.column_names if c not in keep], desc=variant)
