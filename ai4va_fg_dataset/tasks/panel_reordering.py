"""Panel Reordering (method.md section 2): put two removed panels back in reading order.

On a page with at least three panels in annotated reading order (``Panel.order``: ACBF, OpenMantra,
AI4VA ``Order``), two panels **consecutive** in that order are blanked white (their outline
polygon where the source has one) and marked with filled orange markers "1" (the earlier
position) and "2" (the later). Their crops are shown to the right of the page in two tiles labelled
"A" and "B". The options are ``"1: A, 2: B"`` and ``"1: B, 2: A"``. There is no grounding box
(method.md: none).

Validity rules (issue 8; each measured by ``ai4va-fg audit``):

* **Checked key.** The annotated panel order of the page must equal the project's own estimate
  (:func:`~ai4va_fg_dataset.reading_order.reading_order` in the page's direction); pages where they
  disagree are excluded (``build_report.json`` ``excluded``) unless ``check_keys=False``
  (``ai4va-fg build --keep-unchecked``). The premise "1 is read before 2" is then true under both.
* **No overlapping or nested pair.** The two removed panels' boxes may share at most
  :data:`MAX_PAIR_OVERLAP` of the smaller box's area (so the blanks never merge and neither crop
  contains the other).
* **Markers apart and inside their blank.** Each disc fits in its blank and the two discs are at
  least :data:`MARKER_GAP` radii apart (edge to edge); otherwise the pair is skipped.
* **No shape shortcut.** Both candidate crops are shown as tiles of the *same* size and aspect
  ratio: each panel is centre-cropped to the geometric mean of the two panels' aspect ratios, and
  only pairs whose aspect ratios differ by at most :data:`MAX_ASPECT_RATIO` are used (each crop then
  loses at most ``1 - 1/sqrt(MAX_ASPECT_RATIO)`` (18%) of one side). Matching crop shapes to blank
  shapes therefore carries no information (the audit's ``aspect`` / ``size`` baselines).
* **Legible crops.** A tile shows its panel at no less than :data:`MIN_CROP_SCALE` of its page size
  (the tile strip may widen up to :data:`MAX_STRIP_FRACTION` of the page width); otherwise skipped.
* **Balanced answers.** Which crop is tile A is balanced over each split: items are paired
  (:func:`~ai4va_fg_dataset.tasks.balance.balanced_pairs`) and the two of a pair show them in
  opposite orders; the answer letter is balanced by the build.

Each sample carries ``audit_meta`` (written by the build to ``item_geometry.jsonl``):
``{"slots": [box1, box2], "shown": [regionA, regionB], "tiles": [tileA, tileB]}``, the blanked
panel boxes in page pixels (the page sits at the image origin, so they are image pixels too), the
page regions shown in tiles A and B (page pixels) and the tile boxes (image pixels).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from ..core.geometry import BBox, area, center, crop_image, intersection
from ..marks import blank_region, draw_marks, marker_position, marker_radius
from ..page import Page, Panel
from ..reading_order import reading_order
from ..schema import Sample
from .balance import CheckedOrderGenerator
from .base import TaskGenerator, open_page

MIN_PANELS = 3
MAX_PER_PAGE = 3
"""At most this many consecutive pairs per page (paper: 1392 / 282 pages)."""

MAX_PAIR_OVERLAP = 0.02
"""Most area the two removed panels' boxes may share, as a fraction of the smaller box (2%: outlines
that touch or overlap by a few pixels pass; overlapping and nested panels do not)."""

MAX_ASPECT_RATIO = 1.5
"""Largest ratio between the two removed panels' aspect ratios (w/h), larger over smaller."""

MIN_CROP_SCALE = 0.5
"""Smallest scale at which a tile may show its panel (tile pixels per page pixel)."""

MAX_STRIP_FRACTION = 0.6
"""Widest the tile strip may be, as a fraction of the page width."""

STRIP_FRACTION = 0.4
"""Default width of the tile strip, as a fraction of the page width."""

MARKER_GAP = 0.5
"""Least gap between the two marker discs, in marker radii."""

CHOICES = ["1: A, 2: B", "1: B, 2: A"]
QUESTION = (
    "Two panels of this page have been removed: their places are blank and marked 1 and 2 (orange "
    "markers), with 1 read before 2. The removed panels are shown on the right, labelled A and B "
    "(each cut to the same tile shape, so their edges may be trimmed). Which panels fill blank "
    "positions 1 and 2 in reading order?{direction}"
)
RTL_NOTE = " (This page is read from right to left.)"


def aspect(box: BBox) -> float:
    """Width over height of ``box`` (pixels)."""
    return (box[2] - box[0]) / (box[3] - box[1])


def centre_crop(box: BBox, target_aspect: float) -> BBox:
    """The largest box of aspect ``target_aspect`` (w/h) centred in ``box`` (pixels)."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = center(box)
    if w / h > target_aspect:
        w = h * target_aspect
    else:
        h = w / target_aspect
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def pair_overlap(a: BBox, b: BBox) -> float:
    """Shared area of two boxes as a fraction of the smaller one's area."""
    return intersection(a, b) / max(1e-9, min(area(a), area(b)))


@dataclass(frozen=True)
class _Layout:
    strip: int
    pad: int
    tile: tuple[int, int]


def tile_layout(page_size: tuple[int, int], regions: list[BBox]) -> _Layout | None:
    """The strip width, padding and common tile size for ``regions`` (same aspect), or ``None``
    when a tile would show its region below :data:`MIN_CROP_SCALE`."""
    w, h = page_size
    pad = max(4, w // 100)
    ar = aspect(regions[0])
    widest = max(r[2] - r[0] for r in regions)
    # the default strip, widened (up to MAX_STRIP_FRACTION) where the scale needs it; two stacked
    # tiles must fit the page height; no upscaling of the larger region
    wanted = max(STRIP_FRACTION * w - 2 * pad, MIN_CROP_SCALE * widest)
    tw = min(wanted, MAX_STRIP_FRACTION * w - 2 * pad, (h - 3 * pad) / 2 * ar, widest)
    if tw < 1 or tw / widest < MIN_CROP_SCALE - 1e-9:
        return None
    tile = (max(1, math.floor(tw)), max(1, math.floor(tw / ar)))
    strip = max(round(STRIP_FRACTION * w), tile[0] + 2 * pad)
    return _Layout(strip, pad, tile)


def _composite(page_img: Image.Image, crops: list[Image.Image], labels: list[str], layout: _Layout
               ) -> tuple[Image.Image, list[BBox]]:
    """The page with a white strip on its right holding ``crops`` as equal tiles, each labelled;
    returns the image and the tile boxes (image pixels)."""
    w, h = page_img.size
    canvas = Image.new("RGB", (w + layout.strip, h), (255, 255, 255))
    canvas.info["source_format"] = page_img.info.get("source_format")  # export keeps JPEG scans JPEG
    canvas.paste(page_img, (0, 0))
    ImageDraw.Draw(canvas).line((w, 0, w, h), fill=(0, 0, 0), width=max(2, w // 300))
    tw, th = layout.tile
    gap = (h - 2 * th) / 3
    markers, tiles = [], []
    x = w + (layout.strip - tw) // 2
    for k, crop in enumerate(crops):
        y = round(gap + k * (th + gap))
        canvas.paste(crop.resize((tw, th), Image.Resampling.LANCZOS), (x, y))
        tiles.append((float(x), float(y), float(x + tw), float(y + th)))
        markers.append(marker_position(tiles[-1], canvas.size, "corner"))
    return draw_marks(canvas, markers=markers, labels=labels), tiles


def _pair_problem(first: Panel, second: Panel, size: tuple[int, int]) -> str | None:
    """Why the pair cannot be asked (a skip reason), or ``None``."""
    a, b = first.bbox, second.bbox
    if pair_overlap(a, b) > MAX_PAIR_OVERLAP:
        return f"pair: panels overlap by more than {MAX_PAIR_OVERLAP:.0%}"
    ra, rb = aspect(a), aspect(b)
    if max(ra, rb) / min(ra, rb) > MAX_ASPECT_RATIO:
        return f"pair: aspect ratios differ by more than {MAX_ASPECT_RATIO}x (shape would give the answer)"
    r = marker_radius(size)
    for box in (a, b):
        if min(box[2] - box[0], box[3] - box[1]) < 2 * r + 2:
            return "pair: a blank is smaller than its marker"
    (xa, ya), (xb, yb) = (marker_position(box, size, "center") for box in (a, b))
    if math.hypot(xa - xb, ya - yb) < (2 + MARKER_GAP) * r:
        return "pair: markers would overlap"
    target = math.sqrt(ra * rb)
    if tile_layout(size, [centre_crop(a, target), centre_crop(b, target)]) is None:
        return f"pair: crops would be shown below {MIN_CROP_SCALE:.0%} scale"
    return None


class PanelReorderingGenerator(CheckedOrderGenerator, TaskGenerator):
    """Samples: two blanked consecutive panels marked 1/2, equal tiles A/B beside the page, 2 options.

    Args:
        max_per_page: at most this many items per page (default :data:`MAX_PER_PAGE`).
        check_keys: exclude pages whose annotated panel order disagrees with
            :func:`~ai4va_fg_dataset.reading_order.reading_order` (default ``True``).
    """

    name = "panel_reordering"
    default_max_per_page = MAX_PER_PAGE
    n_levels = 1  # the pair member says which panel is tile A

    def __init__(self, max_per_page: int | None = None, *, check_keys: bool = True) -> None:
        super().__init__(max_per_page)
        self._init_checked(check_keys)

    def why_not(self, page: Page) -> str | None:
        if len(page.panels) < MIN_PANELS:
            return f"fewer than {MIN_PANELS} panels"
        if any(p.order is None for p in page.panels):
            return "panels without annotated reading order"
        return self._checked(page)

    def _order_conflict(self, page: Page) -> str | None:
        panels = sorted(page.panels, key=lambda p: p.order)
        est = reading_order([p.bbox for p in panels], page.reading_direction)
        if est != list(range(len(panels))):
            return "annotated panel order disagrees with the estimated reading order"
        return None

    def _plan(self, page: Page, rng: random.Random) -> list[tuple[Panel, Panel]]:
        panels = sorted(page.panels, key=lambda p: p.order)
        size = (page.width, page.height)
        pairs = []
        for first, second in itertools.pairwise(panels):
            problem = _pair_problem(first, second, size)
            if problem is None:
                pairs.append((first, second))
            else:
                self.skip(problem)
        rng.shuffle(pairs)
        return pairs[: self.max_per_page]

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        pairs = self._plan(page, rng)
        if not pairs:
            return []
        image = open_page(page)
        out: list[Sample] = []
        for n, (first, second) in enumerate(pairs):
            target = math.sqrt(aspect(first.bbox) * aspect(second.bbox))
            regions = [centre_crop(first.bbox, target), centre_crop(second.bbox, target)]
            layout = tile_layout(image.size, regions)
            crops = [crop_image(image, r) for r in regions]
            blanked = image
            for p in (first, second):
                blanked = blank_region(blanked, p.bbox, polygon=p.polygon)
            centres = [marker_position(p.bbox, image.size, "center") for p in (first, second)]
            blanked = draw_marks(blanked, markers=centres, labels=["1", "2"])
            a_is_first = self.slot(page, n, rng).member == 0  # paired items show the crops both ways
            order = [0, 1] if a_is_first else [1, 0]
            composite, tiles = _composite(blanked, [crops[i] for i in order], ["A", "B"], layout)
            sample = self.sample(
                page, n, image=composite,
                question=QUESTION.format(direction=RTL_NOTE if page.reading_direction == "rtl" else ""),
                choices=list(CHOICES), answer="A" if a_is_first else "B", answer_type="choice",
                width=composite.width, height=composite.height,
            )
            sample.audit_meta = {
                "slots": [list(first.bbox), list(second.bbox)],
                "shown": [list(regions[i]) for i in order],
                "tiles": [list(t) for t in tiles],
            }
            out.append(sample)
        return out
