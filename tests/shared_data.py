"""Where the tests find real comic data, and the one skip marker for tests that need the full sets.

The embedded demo pages (``ai4va_fg_dataset/demo_data``, 13 real pages with their licences) ship with
the package: tests use them wherever they can, so a clone without ``../shared`` still runs them.
Only tests that check facts about the complete datasets (page counts, every page of a book, the
inconsistent Mimi & Eunice strips) need ``../shared/data``; they are marked ``needs_shared_data``
and say so in their skip reason, which ``make test`` prints (``pytest -rs``).
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "ai4va_fg_dataset" / "demo_data"
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_shared_data(what: str) -> pytest.MarkDecorator:
    """Skip marker for a test that checks ``what`` on the full real datasets in ``../shared/data``."""
    return pytest.mark.skipif(
        not (SHARED_DATA / "craphound").is_dir(),
        reason=f"needs ../shared/data beside the repo ({SHARED_DATA} not found): checks {what}, "
        "which the 13 embedded demo pages do not contain",
    )


def tiny_panel_coco(root: Path, pages: int = 3) -> Path:
    """Write ``pages`` tiny COCO pages (120 x 160 px PNGs, 3 panels each with an ``Order`` attribute, which
    feeds panel_reordering and Panel Understanding) under ``root``; returns the annotation JSON's path."""
    import json

    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(pages):
        Image.new("RGB", (120, 160), (30 * i, 90, 160)).save(root / f"p{i}.png")
        images.append({"id": i + 1, "file_name": f"p{i}.png", "width": 120, "height": 160})
        for k, box in enumerate(([5, 5, 50, 70], [60, 5, 55, 70], [5, 85, 110, 70])):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": box,
                         "attributes": {"Order": k}})
    path = root / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "panel"}]}))
    return path
