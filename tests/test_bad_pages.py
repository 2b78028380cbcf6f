"""Page images that do not decode or are too large are bad records like any other: strict mode
stops with ``FILE: RECORD: REASON`` (exit 2), ``--skip-bad`` skips and lists them, and no row is ever
made from them. Before: a truncated JPEG or a 100-byte PNG gave exit 0 and rows failing at load time
("image file is truncated"), or a traceback with all tasks even under --skip-bad; a 20000 x 20000
page a DecompressionBombError traceback; a 12000 x 12000 page was accepted (3.4 GB of RSS)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ai4va_fg_dataset.build.pipeline import DEFAULT_MAX_PAGE_PIXELS
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.synthetic import make_synthetic_ai4va


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _bomb_png(path: Path, side: int) -> None:
    """A valid all-black 1-bit PNG of ``side`` x ``side`` pixels, a few kB on disk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def _truncated_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="JPEG", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])  # a JPEG cut to a third


def _damaged(tmp_path: Path, n_pages: int, damage: dict[int, str]) -> tuple[Path, list[Path]]:
    """The synthetic set (every closed task) with pages damaged as ``{index: kind}``."""
    ann = make_synthetic_ai4va(tmp_path / "data", n_pages=n_pages, seed=0)
    data = json.loads(ann.read_text())
    files = [ann.parent / img["file_name"] for img in data["images"]]
    for i, kind in damage.items():
        if kind == "truncated-jpeg":
            _truncated_jpeg(files[i])
        elif kind == "100-byte-png":
            files[i].write_bytes(files[i].read_bytes()[:100])
        else:  # "bomb-20000" / "huge-12000": a page of that side, its COCO size to match
            side = int(kind.split("-")[1])
            _bomb_png(files[i], side)
            data["images"][i].update(width=side, height=side)
    ann.write_text(json.dumps(data))
    return ann, files


def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for shard in sorted(out.glob("*/*.parquet"))
            for r in pq.read_table(shard, columns=["page_id", "image"]).to_pylist()]


def test_skip_bad_lists_bad_page_images_and_writes_no_row_of_them(tmp_path, capsys):
    damage = {1: "truncated-jpeg", 2: "100-byte-png", 3: "bomb-20000", 4: "huge-12000"}
    ann, files = _damaged(tmp_path, 6, damage)
    out = tmp_path / "out"
    assert main(["build", "--source", "auto", "--path", str(ann.parent), "--out", str(out), "--skip-bad",
                 "--no-contact-sheet"]) == 0
    report = json.loads((out / "build_report.json").read_text())
    reasons = {Path(r["file"]).name: r["reason"] for r in report["bad_records"]}
    assert set(reasons) == {files[i].name for i in damage}, report["bad_records"]
    assert "image does not decode: OSError: image file is truncated" in reasons[files[1].name]
    assert "image does not decode" in reasons[files[2].name]
    assert "image too large: Image size (400000000 pixels) exceeds limit" in reasons[files[3].name]
    assert ("image of 12000x12000 = 144.0 MP is over the page limit of 50 MP (--max-page-pixels)"
            in reasons[files[4].name])
    rows = _rows(out)
    bad_stems = {files[i].stem for i in damage}
    assert rows and not [r["page_id"] for r in rows if r["page_id"].rsplit("/", 1)[1] in bad_stems]
    for r in rows:  # every row's image decodes completely
        Image.open(io.BytesIO(r["image"]["bytes"])).load()
    assert report["pages"] == 2 and sum(report["pages_per_split"].values()) == 2
    assert report["sources"][0]["pages"] == 2 and "page_ids" not in report["sources"][0]
    assert report["max_page_pixels"] == DEFAULT_MAX_PAGE_PIXELS
    printed = capsys.readouterr().out
    assert "4 bad records skipped" in printed


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("truncated-jpeg", "image does not decode: OSError: image file is truncated"),
     ("100-byte-png", "image does not decode: OSError"),
     ("bomb-20000", "image too large"),
     ("huge-12000", "is over the page limit of 50 MP (--max-page-pixels)")],
)
def test_strict_mode_stops_at_a_bad_page_image_naming_it(tmp_path, capsys, kind, reason):
    ann, files = _damaged(tmp_path, 2, {1: kind})
    out = tmp_path / "out"
    assert main(["build", "--source", "auto", "--path", str(ann.parent), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ai4va-fg: bad annotation: {files[1]}: ") and reason in err, err
    assert "Traceback" not in err and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging folder left


def test_max_page_pixels_option(tmp_path, capsys):
    ann, _ = _damaged(tmp_path, 2, {})
    out = tmp_path / "out"
    base = ["build", "--source", "auto", "--path", str(ann.parent), "--out", str(out), "--no-contact-sheet",
            "--tasks", "panel_reordering"]
    assert main([*base, "--max-page-pixels", "500000"]) == 2  # synthetic pages are 640 x 900 = 0.58 MP
    assert "image of 640x900 = 0.6 MP is over the page limit of 0.5 MP (--max-page-pixels)" in capsys.readouterr().err
    assert main([*base, "--max-page-pixels", "600000"]) == 0
    assert json.loads((out / "build_report.json").read_text())["max_page_pixels"] == 600_000
    with pytest.raises(SystemExit) as exc:
        main([*base, "--max-page-pixels", "-5"])
    assert exc.value.code == 2 and "must be >= 0" in capsys.readouterr().err


def test_each_page_image_is_decoded_once(tmp_path, monkeypatch):
    """The decode check is the generators' own decode: one header read (adapter) and one full
    decode per page, whatever the number of tasks that draw on it."""
    import PIL.Image

    ann, files = _damaged(tmp_path, 3, {})
    opened: dict[str, int] = {}
    real_open = PIL.Image.open

    def counting_open(fp, *args, **kwargs):
        if isinstance(fp, (str, Path)):
            opened[Path(fp).name] = opened.get(Path(fp).name, 0) + 1
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", counting_open)
    assert main(["build", "--source", "auto", "--path", str(ann.parent), "--out", str(tmp_path / "out"),
                 "--no-contact-sheet", "--num-proc", "1"]) == 0  # in this process, where PIL.Image.open is counted
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert len([t for t, c in report["counts"].items() if sum(c.values())]) >= 5  # many tasks drew on each page
    assert opened == {f.name: 2 for f in files}
