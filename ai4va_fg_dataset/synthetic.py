"""A small SYNTHETIC page set in the AI4VA annotation schema (method.md section 1).

The real AI4VA files are not reachable from this project's machines, and none of the real comics
in ``/work/shared/data`` carries character identity, ordinal depth or pose labels. To exercise the
character, depth and action tasks end to end, :func:`make_synthetic_ai4va` draws simple comic-like
pages with PIL and writes their annotations as an AI4VA-schema COCO JSON:

* categories ``panel``, ``character``, ``object``, ``speech balloon``;
* character attributes ``{"Intradepth": int, "Interdepth": int, "Identity": str, "Pose": str}``
  (Intradepth: ordinal depth inside the panel, 0 = closest; closer figures are drawn bigger and
  lower), objects ``{"Intradepth": int, "Interdepth": int}``;
* balloons ``{"Text": str, "Order": int}`` (reading order over the page), panels ``{"Order": int}``.

Everything is labelled SYNTHETIC (file names ``synthetic_*``, ``info.description``); these pages
are test data, never a stand-in for AI4VA results. Load them with the AI4VA adapter::

    load_source("synthetic", json_path, log=BadRecordLog())
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .core.atomic_dir import replacing_file
from .reading_order import reading_order

PAGE_SIZE = (640, 900)
"""``(width, height)`` of a synthetic page in pixels."""

MARGIN = 20
GUTTER = 14

IDENTITIES: dict[str, tuple[int, int, int]] = {
    "Placid": (200, 40, 40),
    "Muzo": (40, 150, 60),
    "Yves": (150, 60, 180),
    "Mira": (230, 170, 20),
    "Otto": (40, 120, 200),
}
"""Character identities and the colour each is drawn in (one colour per identity)."""

POSES: tuple[str, ...] = ("standing", "running", "jumping", "waving", "sitting", "pointing")
"""Pose labels; each is drawn with its own limb layout."""

OBJECTS: tuple[str, ...] = ("tree", "crate", "lamp")

LINES: tuple[str, ...] = (
    "Look over there!", "Where are we going?", "Follow me.", "I found it!", "Not so fast!",
    "What was that noise?", "Let's go home.", "Hurry up!", "Did you see him?", "It's late.",
    "Wait for me!", "Quiet, please.",
)

CATEGORIES = [
    {"id": 1, "name": "panel"},
    {"id": 2, "name": "character"},
    {"id": 3, "name": "object"},
    {"id": 4, "name": "speech balloon"},
]


def _layout(rng: random.Random) -> list[tuple[float, float, float, float]]:
    """Panel boxes of one page: 2-3 rows of 1-3 panels, sometimes a tall panel beside two."""
    w, h = PAGE_SIZE
    n_rows = rng.choice((2, 3, 3))
    row_h = (h - 2 * MARGIN - (n_rows - 1) * GUTTER) / n_rows
    boxes = []
    for r in range(n_rows):
        y1 = MARGIN + r * (row_h + GUTTER)
        y2 = y1 + row_h
        n = rng.choice((1, 2, 2, 3))
        col_w = (w - 2 * MARGIN - (n - 1) * GUTTER) / n
        for c in range(n):
            x1 = MARGIN + c * (col_w + GUTTER)
            boxes.append((round(x1), round(y1), round(x1 + col_w), round(y2)))
    return boxes


def _draw_figure(draw: ImageDraw.ImageDraw, box, color, pose: str) -> None:
    """A simple figure filling ``box``: head, body and limbs laid out by ``pose``."""
    x1, y1, x2, y2 = box
    cx, w, h = (x1 + x2) / 2, x2 - x1, y2 - y1
    head_r = min(w * 0.3, h * 0.13)
    lw = max(2, round(w / 12))
    draw.ellipse((cx - head_r, y1, cx + head_r, y1 + 2 * head_r), fill=color, outline=(0, 0, 0))
    neck, hip = y1 + 2 * head_r, y1 + h * 0.62
    if pose == "sitting":
        hip = y1 + h * 0.7
    draw.rectangle((cx - w * 0.18, neck, cx + w * 0.18, hip), fill=color, outline=(0, 0, 0))
    sh = neck + h * 0.05
    arms = {
        "standing": [(-0.45, 0.35), (0.45, 0.35)],
        "running": [(-0.45, 0.15), (0.45, 0.4)],
        "jumping": [(-0.45, -0.15), (0.45, -0.15)],
        "waving": [(-0.4, 0.35), (0.45, -0.2)],
        "sitting": [(-0.4, 0.3), (0.4, 0.3)],
        "pointing": [(-0.35, 0.35), (0.5, 0.05)],
    }[pose]
    for dx, dy in arms:
        draw.line((cx, sh, cx + dx * w, sh + dy * h), fill=color, width=lw)
    legs = {
        "running": [(-0.45, 1.0), (0.4, 0.85)],
        "jumping": [(-0.3, 0.85), (0.3, 0.85)],
        "sitting": [(-0.5, 0.72), (0.5, 0.72)],
    }.get(pose, [(-0.2, 1.0), (0.2, 1.0)])
    for dx, fy in legs:
        draw.line((cx, hip, cx + dx * w, y1 + fy * h - lw / 2), fill=color, width=lw)


def _draw_object(draw: ImageDraw.ImageDraw, box, kind: str) -> None:
    x1, y1, x2, y2 = box
    if kind == "tree":
        draw.rectangle(((x1 + x2) / 2 - (x2 - x1) * 0.1, y1 + (y2 - y1) * 0.5, (x1 + x2) / 2 + (x2 - x1) * 0.1, y2),
                       fill=(120, 80, 40))
        draw.ellipse((x1, y1, x2, y1 + (y2 - y1) * 0.6), fill=(60, 140, 60), outline=(0, 0, 0))
    elif kind == "crate":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=(180, 130, 70), outline=(0, 0, 0), width=2)
        draw.line((x1, y1, x2, y2), fill=(0, 0, 0), width=2)
    else:
        draw.rectangle(((x1 + x2) / 2 - 2, y1 + (y2 - y1) * 0.2, (x1 + x2) / 2 + 2, y2), fill=(60, 60, 60))
        draw.ellipse((x1, y1, x2, y1 + (y2 - y1) * 0.3), fill=(250, 240, 150), outline=(0, 0, 0))


def _ellipse_polygon(box, n: int = 16) -> list[float]:
    x1, y1, x2, y2 = box
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    pts = []
    for k in range(n):
        a = 2 * math.pi * k / n
        pts += [round(cx + rx * math.cos(a), 1), round(cy + ry * math.sin(a), 1)]
    return pts


def _rect_polygon(box) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _page(rng: random.Random, image_id: int, next_ann: list[int]) -> tuple[Image.Image, list[dict]]:
    """Draw one page; returns the image and its COCO annotations."""
    img = Image.new("RGB", PAGE_SIZE, (250, 248, 240))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    anns: list[dict] = []

    def add(cat: int, box, attrs: dict, poly: list[float]) -> None:
        x1, y1, x2, y2 = box
        anns.append({
            "id": next_ann[0], "image_id": image_id, "category_id": cat,
            "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)],
            "area": round((x2 - x1) * (y2 - y1), 1), "iscrowd": 0,
            "segmentation": [poly], "attributes": attrs,
        })
        next_ann[0] += 1

    panels = _layout(rng)
    order = reading_order(panels, "ltr")
    balloon_order = 0
    cast = rng.sample(list(IDENTITIES), k=3)  # the page's recurring characters
    for rank, pi in enumerate(order):
        px1, py1, px2, py2 = panels[pi]
        draw.rectangle((px1, py1, px2 - 1, py2 - 1), fill=(225 + rng.randrange(25), 235, 245), outline=(0, 0, 0), width=3)
        add(1, (px1, py1, px2, py2), {"Order": rank}, _rect_polygon((px1, py1, px2, py2)))
        pw, ph = px2 - px1, py2 - py1
        n_chars = rng.choice((1, 2, 2, 3))
        who = rng.sample(cast, k=n_chars)
        depths = list(range(n_chars))
        rng.shuffle(depths)
        # entities to draw: (depth, kind, label) ; far ones first so near ones overlap them
        items = [(d, "character", name) for d, name in zip(depths, who)]
        if rng.random() < 0.5:
            items.append((n_chars, "object", rng.choice(OBJECTS)))
        slots = list(range(len(items)))
        rng.shuffle(slots)
        for (depth, kind, label), slot in sorted(zip(items, slots), key=lambda t: -t[0][0]):
            scale = 0.62 - 0.12 * depth
            eh = ph * scale
            ew = min(eh * 0.45, pw / (len(items) + 0.5))
            sx = px1 + pw * (slot + 0.5) / len(items)
            bottom = py2 - 6 - ph * 0.06 * depth
            box = (round(sx - ew / 2), round(bottom - eh), round(sx + ew / 2), round(bottom))
            interdepth = rank * 10 + depth
            if kind == "character":
                pose = rng.choice(POSES)
                _draw_figure(draw, box, IDENTITIES[label], pose)
                add(2, box, {"Intradepth": depth, "Interdepth": interdepth, "Identity": label, "Pose": pose},
                    _rect_polygon(box))
            else:
                _draw_object(draw, box, label)
                add(3, box, {"Intradepth": depth, "Interdepth": interdepth, "Object": label}, _rect_polygon(box))
        if rng.random() < 0.8:
            text = rng.choice(LINES)
            tw = draw.textlength(text, font=font)
            bw, bh = min(tw + 24, pw - 12), 34
            bx1 = px1 + 6 + rng.random() * max(0, pw - 12 - bw)
            by1 = py1 + 6
            bbox = (round(bx1), round(by1), round(bx1 + bw), round(by1 + bh))
            draw.ellipse(bbox, fill=(255, 255, 255), outline=(0, 0, 0), width=2)
            draw.text(((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2), text, fill=(0, 0, 0), font=font, anchor="mm")
            add(4, bbox, {"Text": text, "Order": balloon_order}, _ellipse_polygon(bbox))
            balloon_order += 1
    return img, anns


def make_synthetic_ai4va(out_dir: str | os.PathLike, n_pages: int = 6, seed: int = 0,
                         pages_per_file: int | None = None) -> Path:
    """Write ``n_pages`` SYNTHETIC pages and their AI4VA-schema COCO JSON into ``out_dir``.

    Deterministic under ``seed`` (same pages, same JSON). Files: ``synthetic_000.png``... and
    ``synthetic_ai4va.json``, or with ``pages_per_file`` one JSON per ``pages_per_file`` pages
    (``synthetic_ai4va_000.json``...: one book per file, the layout of large sets such as Manga109,
    one XML per book; load the folder with the ``synthetic`` adapter). Each JSON is written
    atomically (:func:`~ai4va_fg_dataset.core.atomic_dir.replacing_file`).

    Args:
        out_dir: folder to write into (created if missing).
        n_pages: number of pages (at least 1).
        seed: random seed of layouts, casts, poses, depths and dialogue.
        pages_per_file: pages per JSON file (at least 1); ``None``: one file.

    Returns:
        The path of the JSON file, or of ``out_dir`` when there are several.

    Raises:
        ValueError: ``n_pages < 1`` or ``pages_per_file < 1``.
    """
    if n_pages < 1:
        raise ValueError(f"n_pages must be at least 1, got {n_pages}")
    if pages_per_file is not None and pages_per_file < 1:
        raise ValueError(f"pages_per_file must be at least 1, got {pages_per_file}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"synthetic-ai4va/{seed}")
    images, annotations = [], []
    next_ann = [1]
    for k in range(n_pages):
        img, anns = _page(rng, k + 1, next_ann)
        name = f"synthetic_{k:03d}.png"
        img.save(out / name, optimize=False)
        images.append({"id": k + 1, "file_name": name, "width": img.width, "height": img.height, "license": 1})
        annotations.extend(anns)
    if pages_per_file is not None:
        for k, start in enumerate(range(0, n_pages, pages_per_file)):
            ids = {img["id"] for img in images[start:start + pages_per_file]}
            _write_coco(out / f"synthetic_ai4va_{k:03d}.json", images[start:start + pages_per_file],
                        [a for a in annotations if a["image_id"] in ids])
        return out
    return _write_coco(out / "synthetic_ai4va.json", images, annotations)


def _write_coco(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    data = {
        "info": {
            "description": "SYNTHETIC pages in the AI4VA annotation schema, drawn by ai4va_fg_dataset.synthetic "
                           "for tests and demos; not AI4VA data",
            "version": "1.0",
            "contributor": "ai4va_fg_dataset.synthetic (SYNTHETIC)",
            "year": 2025,
        },
        "licenses": [{"id": 1, "name": "CC0 1.0 (synthetic)", "url": ""}],
        "images": images,
        "categories": CATEGORIES,
        "annotations": annotations,
    }
    with replacing_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m ai4va_fg_dataset.synthetic --out DIR [--pages N] [--seed S]``: write a SYNTHETIC set."""
    import argparse

    parser = argparse.ArgumentParser(description="Write a SYNTHETIC page set in the AI4VA annotation schema.")
    parser.add_argument("--out", required=True, help="output folder (pages + synthetic_ai4va.json)")
    parser.add_argument("--pages", type=int, default=12, help="number of pages (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages-per-file", type=int, default=None,
                        help="write one COCO JSON per this many pages (a book per file); default: one file")
    args = parser.parse_args(argv)
    if args.pages < 1:
        parser.error(f"--pages must be >= 1, got {args.pages}")
    if args.pages_per_file is not None and args.pages_per_file < 1:
        parser.error(f"--pages-per-file must be >= 1, got {args.pages_per_file}")
    print(make_synthetic_ai4va(args.out, args.pages, args.seed, pages_per_file=args.pages_per_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
