"""A contact sheet of built samples, to eyeball the drawn marks against the grounding boxes.

Each cell shows one sample's image (downscaled), its task, the question (wrapped), the options and
the answer, with every grounding box of ``bboxes`` outlined as a dashed line. The marks drawn by a
task generator (solid blue boxes / orange markers, method.md section 2) should sit exactly inside
or on the dashed outlines; a shifted or missing outline shows a coordinate bug at a glance.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.atomic_dir import replacing_file
from ..core.images import decode_image
from ..schema import CHOICE_LETTERS, TASKS, Sample

COLUMNS = 4
"""Cells per row."""

CELL_INCHES = (4.0, 6.0)
"""Width and height of one cell in inches (image on top, text below)."""

DPI = 100
"""Resolution of the PNG: a cell is ``400 x 600`` pixels."""

THUMBNAIL = 600
"""Longest side, in pixels, of the downscaled sample image."""

GT_COLOR = "#00c853"
"""Colour of the dashed ground-truth outlines (green: distinct from the blue/orange marks)."""


def _field(sample: Sample | Mapping[str, Any], name: str) -> Any:
    return sample[name] if isinstance(sample, Mapping) else getattr(sample, name)


def select_samples(samples: Iterable[Sample | Mapping[str, Any]], n: int, seed: int = 0) -> list:
    """Pick ``n`` samples spread over the tasks: per task ordered by ``sha256(seed, id)``, then
    taken round-robin in :data:`~ai4va_fg_dataset.schema.TASKS` order (deterministic)."""
    by_task: dict[str, list] = {}
    for s in samples:
        by_task.setdefault(_field(s, "task"), []).append(s)
    for items in by_task.values():
        items.sort(key=lambda s: hashlib.sha256(f"{seed}\x00{_field(s, 'id')}".encode()).hexdigest())
    order = [t for t in TASKS if t in by_task] + sorted(t for t in by_task if t not in TASKS)
    chosen: list = []
    depth = 0
    while len(chosen) < n and any(depth < len(by_task[t]) for t in order):
        for t in order:
            if depth < len(by_task[t]) and len(chosen) < n:
                chosen.append(by_task[t][depth])
        depth += 1
    return chosen


def _caption(sample) -> str:
    q = textwrap.fill(str(_field(sample, "question")), width=52, max_lines=7, placeholder=" ...")
    lines = [q]
    for i, c in enumerate(_field(sample, "choices") or []):
        lines.append(textwrap.shorten(f"{CHOICE_LETTERS[i]}. {c}", width=52, placeholder=" ..."))
    answer = textwrap.shorten(str(_field(sample, "answer")), width=44, placeholder=" ...")
    lines.append(f"answer: {answer}    boxes: {len(_field(sample, 'bboxes') or [])}")
    return "\n".join(lines)


def sheet_size(n_cells: int) -> tuple[int, int]:
    """Pixel ``(width, height)`` of a sheet with ``n_cells`` cells."""
    cols = min(COLUMNS, max(1, n_cells))
    rows = max(1, -(-n_cells // cols))
    return round(cols * CELL_INCHES[0] * DPI), round(rows * CELL_INCHES[1] * DPI)


def make_contact_sheet(
    samples: Iterable[Sample | Mapping[str, Any]], path: str | os.PathLike, n: int = 8, seed: int = 0
) -> Path:
    """Draw ``n`` samples (see :func:`select_samples`) into a PNG grid at ``path``.

    Args:
        samples: :class:`~ai4va_fg_dataset.schema.Sample` objects or dataset rows (dicts whose
            ``image`` is PIL, bytes, a path or a ``{"bytes", "path"}`` cell).
        path: the PNG to write; written to a temporary file and moved into place atomically.
        n: number of cells (fewer if there are fewer samples).
        seed: which samples are shown.

    Returns:
        ``path``; the image is :func:`sheet_size` pixels.

    Raises:
        ValueError: no samples.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    chosen = select_samples(samples, n, seed)
    if not chosen:
        raise ValueError("no samples to draw on a contact sheet")
    cols = min(COLUMNS, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = plt.figure(figsize=(cols * CELL_INCHES[0], rows * CELL_INCHES[1]), dpi=DPI)
    grid = fig.add_gridspec(rows * 2, cols, height_ratios=[3.3, 1.7] * rows, hspace=0.08, wspace=0.05,
                            left=0.01, right=0.99, top=0.97, bottom=0.01)
    for k, sample in enumerate(chosen):
        r, c = divmod(k, cols)
        ax = fig.add_subplot(grid[2 * r, c])
        image = decode_image(_field(sample, "image"))
        scale = min(1.0, THUMBNAIL / max(image.size))
        thumb = image  # RGB already (decode_image)
        if scale < 1.0:
            thumb = thumb.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        ax.imshow(thumb, extent=(0, image.width, image.height, 0), interpolation="antialiased")
        for x1, y1, x2, y2 in _field(sample, "bboxes") or []:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=GT_COLOR,
                                   linestyle=(0, (4, 3)), linewidth=1.6))
        ax.set_xlim(0, image.width)
        ax.set_ylim(image.height, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{_field(sample, 'task')}  [{_field(sample, 'page_id')}]", fontsize=8)
        tax = fig.add_subplot(grid[2 * r + 1, c])
        tax.axis("off")
        tax.text(0.0, 1.0, _caption(sample), va="top", ha="left", fontsize=7, family="monospace",
                 transform=tax.transAxes)
    out = Path(path)
    try:
        with replacing_file(out) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return out
