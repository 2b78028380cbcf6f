"""Contact sheet: a PNG of the expected size, dashed GT outlines where the boxes are."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ai4va_fg_dataset.build.contact_sheet import make_contact_sheet, select_samples, sheet_size
from ai4va_fg_dataset.schema import BOX_COLOR, Sample


def _sample(i: int, task: str, box=(100, 200, 300, 500)):
    img = Image.new("RGB", (600, 900), (250, 250, 250))
    ImageDraw.Draw(img).rectangle(box, outline=BOX_COLOR, width=4)
    return Sample(id=f"{task}/src/b/{i}/0", task=task, image=img, question="Which one is closer? " * 6,
                  choices=["the left one", "the right one"], answer="A", answer_type="choice",
                  page_id=f"src/b/{i}", source="src", width=600, height=900, bboxes=[list(box)])


def test_sheet_png_size_and_outline(tmp_path):
    samples = [_sample(i, t) for i in range(5) for t in ("depth_comparison", "action_recognition")]
    out = make_contact_sheet(samples, tmp_path / "sheet" / "contact_sheet.png", n=6, seed=0)
    assert out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["contact_sheet.png"]  # no temp file left
    sheet = Image.open(out)
    assert sheet.format == "PNG"
    assert sheet.size == sheet_size(6) == (1600, 1200)
    # the dashed GT outline is drawn in green somewhere on the sheet
    a = np.asarray(sheet.convert("RGB")).astype(int)
    green = (a[..., 1] > 150) & (a[..., 0] < 80) & (a[..., 2] < 140)
    assert green.sum() > 200


def test_selection_spreads_tasks_and_is_deterministic():
    samples = [_sample(i, t) for i in range(5) for t in ("character_counting", "depth_comparison")]
    a = select_samples(samples, 4, seed=1)
    assert [s.task for s in a] == ["depth_comparison", "character_counting"] * 2
    assert [s.id for s in a] == [s.id for s in select_samples(list(reversed(samples)), 4, seed=1)]


def test_rows_with_image_bytes_are_accepted(tmp_path):
    s = _sample(0, "character_counting")
    buf = io.BytesIO()
    s.image.save(buf, format="PNG")
    row = s.to_row() | {"image": {"bytes": buf.getvalue(), "path": None}}
    out = make_contact_sheet([row], tmp_path / "one.png", n=8)
    assert Image.open(out).size == sheet_size(1) == (400, 600)
    with pytest.raises(ValueError, match="no samples"):
        make_contact_sheet([], tmp_path / "none.png")
