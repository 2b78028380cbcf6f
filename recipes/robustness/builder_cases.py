"""Hostile inputs for ``ai4va-fg build`` (area ``builder``): output folder safety, stale caches,
bad page images, mistyped COCO / mapping / JSON, unrelated files under ``--source auto``, killed
builds and a VLM that never answers.

Every case builds its input in its own ``workdir``, runs the real CLI in a subprocess
(:func:`cases.run_cli`) and classifies the outcome (see :mod:`cases`): a refusal must be a non-zero
exit with a one-line message and no traceback; a skipped record (``--skip-bad``) must be listed in
``build_report.json`` and leave no row behind; files that are not the builder's (sentinels) must
survive, or the case is ``DATA_LOST``; every row's image must decode, or it is ``SILENTLY_WRONG``.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socketserver
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from cases import REPO, Case, CliResult, Outcome, python, run_cli

AREA = "builder"

# --- inputs -------------------------------------------------------------------------------------------


def _page(path: Path, i: int, fmt: str = "PNG", size: tuple[int, int] = (300, 400)) -> None:
    """A small page image: three coloured panels, different per page ``i``."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(img)
    for k, box in enumerate(((10, 10, 140, 190), (150, 10, 290, 190), (10, 200, 290, 390))):
        draw.rectangle(box, outline=(0, 0, 0), width=3, fill=((40 * i + 60 * k) % 255, 120, (200 - 30 * k) % 255))
    img.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def tiny_coco(root: Path, n_pages: int = 3, *, fmt: str = "PNG", shift: float = 0.0) -> Path:
    """A COCO folder ``root`` with ``n_pages`` pages of 3 ordered panels and 2 ordered, transcribed
    balloons each (feeds panel_reordering and dialog_reordering); ``shift`` moves every box (a
    "changed boxes" rebuild). Returns the JSON path."""
    root.mkdir(parents=True, exist_ok=True)
    ext = "jpg" if fmt == "JPEG" else "png"
    images, anns = [], []
    for i in range(n_pages):
        _page(root / f"page{i}.{ext}", i, fmt)
        images.append({"id": i + 1, "file_name": f"page{i}.{ext}", "width": 300, "height": 400})
        boxes = [[10, 10, 130, 180], [150, 10, 140, 180], [10, 200, 280, 190]]
        for k, (x, y, w, h) in enumerate(boxes):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                         "bbox": [x + shift, y + shift, w - 2 * shift, h - 2 * shift], "attributes": {"Order": k}})
        for k, text in enumerate(("Where are we?", "Follow me!")):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 2,
                         "bbox": [20 + 130 * k + shift, 30, 80, 40], "attributes": {"Text": text, "Order": k}})
    data = {"info": {"description": "robustness test pages"}, "licenses": [{"id": 1, "name": "CC0"}],
            "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "panel"}, {"id": 2, "name": "speech balloon"}]}
    path = root / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def synthetic(root: Path, n_pages: int = 3) -> Path:
    """The SYNTHETIC AI4VA-schema set (feeds every closed task) with ``n_pages`` pages."""
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    return make_synthetic_ai4va(root, n_pages=n_pages, seed=0)


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _deep_json(path: Path, levels: int = 200_000) -> None:
    path.write_text("[" * levels + "]" * levels)


def _png_header_bomb(path: Path, side: int) -> None:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels, all black, a few kB on disk (a
    decompression bomb: PIL would need side^2 bytes once converted)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


# --- running and judging ---------------------------------------------------------------------------------


def build(work: Path, *args: str | Path, cwd: Path | None = None, timeout_s: float = 120) -> CliResult:
    """``ai4va-fg build ARGS`` with the HF caches inside ``work``."""
    env = {"HF_DATASETS_CACHE": str(work / "hf_cache"), "HF_HOME": str(work / "hf_home")}
    return run_cli(["build", *map(str, args)], cwd=cwd or work, timeout_s=timeout_s, env=env)


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (symlinks not followed)."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def lost(before: dict[str, str], folder: Path) -> list[str]:
    """Files of ``before`` that are gone or changed under ``folder``."""
    after = snapshot(folder) if folder.exists() else {}
    return sorted(k for k, v in before.items() if after.get(k) != v)


def refusal(res: CliResult, *must_name: str) -> Outcome | tuple[Outcome, str]:
    """A case whose right answer is a refusal (exit != 0, one message naming ``must_name``)."""
    if res.returncode is None:
        return Outcome.HANG
    if res.traceback:
        return Outcome.TRACEBACK, res.stderr.strip().splitlines()[-1][:120]
    if res.returncode == 0:
        return Outcome.SILENTLY_WRONG, "exit 0"
    missing = [n for n in must_name if n not in res.stderr]
    lines = [line for line in res.stderr.strip().splitlines() if line.startswith("ai4va-fg")]
    note = (lines or res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[0][:160]
    return Outcome.CLEAR_ERROR, (f"message lacks {missing}: " if missing else "") + note


def rows(out: Path) -> list[dict]:
    """Every row of every shard under ``out`` (``page_id``, ``image`` bytes), read with pyarrow."""
    import pyarrow.parquet as pq

    found = []
    for shard in sorted(out.glob("*/*.parquet")):
        table = pq.read_table(shard, columns=["page_id", "image", "bboxes"])
        found += table.to_pylist()
    return found


def corrupt_rows(out: Path) -> list[str]:
    """Page ids of rows whose image does not fully decode."""
    from PIL import Image

    bad = []
    for row in rows(out):
        try:
            with Image.open(io.BytesIO(row["image"]["bytes"])) as im:
                im.load()
        except Exception:  # noqa: BLE001 - any decode failure is a corrupt row
            bad.append(row["page_id"])
    return bad


def skipped(res: CliResult, out: Path, bad_file: str, bad_page: str | None = None) -> Outcome | tuple[Outcome, str]:
    """A ``--skip-bad`` case: exit 0, ``bad_file`` listed in the report, no row from ``bad_page``,
    every row decodes."""
    if res.returncode is None:
        return Outcome.HANG
    if res.traceback:
        return Outcome.TRACEBACK, res.stderr.strip().splitlines()[-1][:120]
    if res.returncode != 0:
        return Outcome.CLEAR_ERROR, "refused instead of skipping: " + res.stderr.strip()[-140:]
    report = json.loads((out / "build_report.json").read_text())
    listed = [r for r in report["bad_records"] if bad_file in r["file"] or bad_file in r["record"]]
    broken = corrupt_rows(out)
    if broken:
        return Outcome.SILENTLY_WRONG, f"{len(broken)} rows whose image does not decode ({broken[0]})"
    if bad_page and any(r["page_id"] == bad_page for r in rows(out)):
        return Outcome.SILENTLY_WRONG, f"rows of the bad page {bad_page} were written"
    if not listed:
        return Outcome.SILENTLY_WRONG, f"{bad_file} not listed in bad_records"
    return Outcome.HANDLED, f"skipped and listed: {listed[0]['reason'][:100]}"


# --- output folder ("nothing lost") -------------------------------------------------------------------------


def out_dot_in_checkout(work: Path):
    """``--out .`` inside a checkout (.git, README mentioning AI4VA-FG, input data): refuse, delete nothing."""
    repo = work / "checkout"
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "README.md").write_text("# AI4VA-FG\nThe AI4VA-FG builder.\n")
    tiny_coco(repo / "data")
    before = snapshot(repo)
    res = build(work, "--source", "auto", "--path", "data", "--out", ".", cwd=repo)
    gone = lost(before, repo)
    return (Outcome.DATA_LOST, f"{len(gone)} files deleted, e.g. {gone[0]}") if gone else refusal(res)


def _build_into_foreign_folder(work: Path, name: str, files: dict[str, str]):
    """Build into ``work/name`` holding ``files`` (none written by the builder): it must refuse and keep them."""
    data = tiny_coco(work / "data")
    out = work / name
    out.mkdir()
    for file, text in files.items():
        (out / file).write_text(text)
    before = snapshot(out)
    res = build(work, "--source", "coco", "--path", data, "--out", out)
    gone = lost(before, out)
    return (Outcome.DATA_LOST, f"deleted {gone}") if gone else refusal(res, str(out))


def out_readme_mentions_ai4va(work: Path):
    """An --out folder whose README mentions AI4VA-FG but was not built: refuse."""
    return _build_into_foreign_folder(work, "notes", {"README.md": "My notes on AI4VA-FG\n", "thesis.tex": "precious"})


def out_with_old_build_report(work: Path):
    """A folder with a build_report.json (the old marker) and someone's file: refuse."""
    return _build_into_foreign_folder(work, "results", {"build_report.json": "{}", "thesis.tex": "precious"})


def out_is_input(work: Path):
    """--out equal to the --path folder."""
    tiny_coco(work / "data")
    before = snapshot(work / "data")
    res = build(work, "--source", "auto", "--path", work / "data", "--out", work / "data")
    gone = lost(before, work / "data")
    return (Outcome.DATA_LOST, f"deleted {gone}") if gone else refusal(res, "input")


def out_contains_input(work: Path):
    """--out is a parent of the input (which also has an AI4VA-FG README)."""
    project = work / "project"
    data = tiny_coco(project / "data")
    (project / "README.md").write_text("AI4VA-FG experiments\n")
    before = snapshot(project)
    res = build(work, "--source", "coco", "--path", data, "--out", project)
    gone = lost(before, project)
    return (Outcome.DATA_LOST, f"deleted {gone}") if gone else refusal(res, "input")


def out_symlink_to_input(work: Path):
    """--out is a symlink to the input folder."""
    tiny_coco(work / "data")
    (work / "link").symlink_to(work / "data", target_is_directory=True)
    before = snapshot(work / "data")
    res = build(work, "--source", "auto", "--path", work / "data", "--out", work / "link")
    gone = lost(before, work / "data")
    return (Outcome.DATA_LOST, f"deleted {gone}") if gone else refusal(res)


def out_is_file(work: Path):
    """--out is an existing file."""
    data = tiny_coco(work / "data")
    (work / "out").write_text("keep")
    res = build(work, "--source", "coco", "--path", data, "--out", work / "out")
    if not (work / "out").is_file() or (work / "out").read_text() != "keep":
        return Outcome.DATA_LOST, "the file was replaced"
    return refusal(res)


def rebuild_keeps_user_file(work: Path):
    """A previous build with a file someone added: the rebuild must not delete it."""
    data = tiny_coco(work / "data")
    out = work / "out"
    first = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet")
    if first.returncode != 0:
        return refusal(first)
    (out / "my_notes.txt").write_text("precious")
    res = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet")
    if not (out / "my_notes.txt").is_file():
        return Outcome.DATA_LOST, "my_notes.txt deleted by the rebuild"
    return refusal(res, "my_notes.txt")


def rebuild_previous_build(work: Path):
    """Rebuilding into a previous build replaces it (exit 0, new rows)."""
    data = tiny_coco(work / "data")
    out = work / "out"
    first = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet")
    res = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet",
                "--tasks", "panel_reordering")
    if first.returncode != 0 or res.returncode != 0:
        return refusal(res if first.returncode == 0 else first)
    if (out / "dialog_reordering").exists():
        return Outcome.SILENTLY_WRONG, "old task folder left in the new build"
    return Outcome.HANDLED, "replaced"


def out_read_only(work: Path):
    """--out in a location that cannot be written: refused at once, no traceback."""
    data = tiny_coco(work / "data")
    if os.geteuid() != 0:
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "out"
    else:  # root writes anywhere on a normal file system: use a read-only one
        target = Path("/sys/ai4va-fg-robustness-out")
        try:
            target.mkdir()
            target.rmdir()
            return Outcome.NOT_RUN, "no read-only location found (root, /sys writable)"
        except OSError:
            pass
    t = time.perf_counter()
    res = build(work, "--source", "coco", "--path", data, "--out", target)
    out = refusal(res, str(target.parent))
    return out if isinstance(out, Outcome) else (out[0], f"{time.perf_counter() - t:.1f} s; {out[1]}")


KILL_IN_STAGING = """
import os, signal, sys
import ai4va_fg_dataset.build.pipeline as b
real = b.write_dataset_card  # the last write of the staged build (shards are streamed before it)
def write_then_die(*args, **kw):
    real(*args, **kw)
    if os.environ.get("SLEEP_IN_STAGING"):
        open(os.environ["SLEEP_IN_STAGING"], "w").close()
        import time; time.sleep(120)
    os.kill(os.getpid(), signal.SIGKILL)
b.write_dataset_card = write_then_die
from ai4va_fg_dataset.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_build(work: Path, data: Path, out: Path, *, sleep_flag: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if sleep_flag:
        env["SLEEP_IN_STAGING"] = str(sleep_flag)
    return subprocess.Popen([python(), "-c", KILL_IN_STAGING, "build", "--source", "coco", "--path", str(data),
                             "--out", str(out), "--no-contact-sheet"], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stale_staging_of_killed_build(work: Path):
    """A build killed (SIGKILL) after writing its shards leaves .out.tmp-*; the next build of the same
    --out removes it, and keeps a look-alike folder it did not make."""
    data = tiny_coco(work / "data")
    out = work / "out"
    _killed_build(work, data, out).wait(timeout=120)
    leftovers = sorted(p.name for p in work.glob(".out.tmp-*"))
    if not leftovers:
        return Outcome.NOT_RUN, "the killed build left nothing to clean"
    foreign = work / ".out.tmp-not-ours"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("someone else's")
    res = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet")
    if not (foreign / "keep.txt").is_file():
        return Outcome.DATA_LOST, "a temp-looking folder the build did not make was deleted"
    if res.returncode != 0:
        return refusal(res)
    still = [n for n in leftovers if (work / n).exists()]
    if still:
        return Outcome.SILENTLY_WRONG, f"stale staging folder(s) left: {still}"
    return Outcome.HANDLED, f"removed {len(leftovers)} stale staging folder(s), kept the foreign one"


def live_staging_is_kept(work: Path):
    """A build still running (inside its staging folder) must not lose that folder to a second build."""
    data = tiny_coco(work / "data")
    out = work / "out"
    flag = work / "in_staging"
    first = _killed_build(work, data, out, sleep_flag=flag)
    try:
        for _ in range(600):
            if flag.exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        if not flag.exists():
            return Outcome.NOT_RUN, "the first build did not reach its staging folder"
        staging = sorted(work.glob(".out.tmp-*"))
        res = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet")
        if not all(p.exists() for p in staging) or not staging:
            return Outcome.DATA_LOST, "the running build's staging folder was deleted"
        return (Outcome.HANDLED, "kept") if res.returncode == 0 else refusal(res)
    finally:
        first.kill()
        first.wait()


# --- stale datasets cache ("nothing stale") ---------------------------------------------------------------

LOAD_BOXES = """
import json, sys
from datasets import load_dataset
ds = load_dataset(sys.argv[1], "panel_reordering")
print(json.dumps(sorted((r["id"], [[round(v, 2) for v in b] for b in r["bboxes"]], len(r["image"].tobytes()) and
                         __import__("hashlib").sha256(r["image"].tobytes()).hexdigest()) for s in ds.values() for r in s)))
"""


def _load(work: Path, out: Path) -> list | str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(work / "shared_cache"), "HF_HOME": str(work / "hf_home")}
    try:
        res = subprocess.run([python(), "-c", LOAD_BOXES, str(out)], capture_output=True, text=True, env=env,
                             timeout=120, cwd=work, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    if res.returncode != 0:
        return "load_dataset failed: " + res.stderr.strip()[-200:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def rebuild_changed_boxes_cache(work: Path):
    """Rebuild in place with moved boxes: a fresh load_dataset (same cache) must return the new boxes."""
    out = work / "out"
    data = tiny_coco(work / "data")
    first = build(work, "--source", "coco", "--path", data, "--out", out, "--tasks", "panel_reordering")
    if first.returncode != 0:
        return refusal(first)
    old = _load(work, out)
    tiny_coco(work / "data", shift=4.0)
    second = build(work, "--source", "coco", "--path", data, "--out", out, "--tasks", "panel_reordering")
    if second.returncode != 0:
        return refusal(second)
    new = _load(work, out)
    if isinstance(old, str) or isinstance(new, str):
        return Outcome.TRACEBACK, str(old if isinstance(old, str) else new)[:150]
    return (Outcome.SILENTLY_WRONG, "old boxes served from the datasets cache") if new == old \
        else (Outcome.HANDLED, "new boxes")


def same_name_builds_cache(work: Path):
    """Two builds a/out and b/out with different images but identical cards: each loads its own rows."""
    loaded = {}
    for name, fmt in (("a", "PNG"), ("b", "JPEG")):
        data = tiny_coco(work / name / "data", fmt=fmt)
        out = work / name / "out"
        res = build(work, "--source", "coco", "--path", data, "--out", out, "--tasks", "panel_reordering")
        if res.returncode != 0:
            return refusal(res)
        loaded[name] = _load(work, out)
        if isinstance(loaded[name], str):
            return Outcome.TRACEBACK, loaded[name][:150]
    a_again = _load(work, work / "a" / "out")
    if loaded["a"] == loaded["b"] or a_again != loaded["a"]:
        return Outcome.SILENTLY_WRONG, "one build's rows served for the other from the datasets cache"
    return Outcome.HANDLED, "each build its own rows"


# --- page images ------------------------------------------------------------------------------------------


def _damaged_synthetic(work: Path, damage: Callable[[Path], None]) -> tuple[Path, Path, str]:
    """The synthetic set with page 1 damaged by ``damage(image_path)``; returns (data, image, page id)."""
    ann = synthetic(work / "data")
    image = sorted((work / "data").glob("synthetic_*.png"))[1]
    damage(image)
    return ann, image, f"synthetic/synthetic_ai4va/{image.stem}"


def _truncated_jpeg(image: Path) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(image).convert("RGB").save(buf, format="JPEG", quality=90)
    image.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])


def _tiny_png(image: Path) -> None:
    image.write_bytes(image.read_bytes()[:100])


def _image_case(damage: Callable[[Path], None], *, strict: bool):
    def run(work: Path):
        data, image, page_id = _damaged_synthetic(work, damage)
        out = work / "out"
        res = build(work, "--source", "auto", "--path", data.parent, "--out", out, "--no-contact-sheet",
                    *([] if strict else ["--skip-bad"]))
        if strict:
            if res.returncode == 0:
                broken = corrupt_rows(out)
                return Outcome.SILENTLY_WRONG, f"exit 0; {len(broken)} rows do not decode"
            return refusal(res, image.name)
        page = page_id if image.stem in page_id else None
        return skipped(res, out, image.name, page)
    return run


def _square_page_data(work: Path, side: int) -> Path:
    """A tiny COCO set whose page1.png is a ``side`` x ``side`` PNG header (annotation sized to match)."""
    data = tiny_coco(work / "data")
    _png_header_bomb(work / "data" / "page1.png", side)
    _edit(data, lambda d: d["images"][1].update(width=side, height=side))
    return data


def bomb_page(work: Path):
    """A 20000 x 20000 page (decompression bomb) with --skip-bad: skipped as a bad record."""
    data = _square_page_data(work, 20_000)
    res = build(work, "--source", "coco", "--path", data, "--out", work / "out", "--skip-bad", "--no-contact-sheet")
    return skipped(res, work / "out", "page1.png", "coco/annotations/page1")


def huge_page(work: Path):
    """A 12000 x 12000 page (144 MP, 3.4 GB of RSS once decoded) with --skip-bad: over the page limit."""
    data = _square_page_data(work, 12_000)
    res = build(work, "--source", "coco", "--path", data, "--out", work / "out", "--skip-bad", "--no-contact-sheet")
    return skipped(res, work / "out", "page1.png", "coco/annotations/page1")


def huge_page_strict(work: Path):
    """The same 12000 x 12000 page without --skip-bad: exit 2 naming the image."""
    data = _square_page_data(work, 12_000)
    return refusal(build(work, "--source", "coco", "--path", data, "--out", work / "out"), "page1.png")


def text_file_as_page(work: Path):
    """A page 'image' that is a text file: a bad record naming it."""
    data = tiny_coco(work / "data")
    (work / "data" / "page1.png").write_text("not an image")
    return refusal(build(work, "--source", "coco", "--path", data, "--out", work / "out"), "page1.png")


def missing_page_image(work: Path):
    """A page image that does not exist: a bad record naming it."""
    data = tiny_coco(work / "data")
    (work / "data" / "page1.png").unlink()
    return refusal(build(work, "--source", "coco", "--path", data, "--out", work / "out"), "page1.png")


# --- COCO records, mappings and JSON ---------------------------------------------------------------------------


def _coco_case(change: Callable[[dict], None], name_in_message: str = "annotations.json", *, skip_bad: bool = False):
    def run(work: Path):
        data = tiny_coco(work / "data")
        _edit(data, change)
        out = work / "out"
        res = build(work, "--source", "coco", "--path", data, "--out", out, "--no-contact-sheet",
                    *(["--skip-bad"] if skip_bad else []))
        if skip_bad:
            return skipped(res, out, name_in_message)
        return refusal(res, name_in_message)
    return run


def _set(path: tuple, value):
    def change(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def deep_json_coco(work: Path):
    """A 200 000-level nested JSON given as the COCO file."""
    _deep_json(work / "deep.json")
    return refusal(build(work, "--source", "coco", "--path", work / "deep.json", "--out", work / "out"), "deep.json")


def deep_json_openmantra(work: Path):
    """A 200 000-level nested JSON given as OpenMantra annotations."""
    _deep_json(work / "annotation.json")
    return refusal(build(work, "--source", "openmantra", "--path", work / "annotation.json", "--out", work / "out"),
                   "annotation.json")


def deep_json_auto(work: Path):
    """A deeply nested JSON next to good data under --source auto: ignored, the build succeeds."""
    tiny_coco(work / "data")
    _deep_json(work / "data" / "deep.json")
    res = build(work, "--source", "auto", "--path", work / "data", "--out", work / "out", "--no-contact-sheet")
    return (Outcome.HANDLED, "ignored") if res.returncode == 0 else refusal(res)


def unrelated_json_auto(work: Path):
    """Unrelated *.json files (root and a sub-folder) next to good data under --source auto."""
    tiny_coco(work / "data")
    sub = work / "data" / "tools"
    sub.mkdir()
    (sub / "package.json").write_text(json.dumps({"name": "x", "version": "1.0", "images": 5}))
    (sub / "list.json").write_text(json.dumps([1, 2, {"a": [3]}]))
    (sub / "mantra_like.json").write_text(json.dumps([{"book_title": ["x"], "pages": "none"}]))
    (sub / "coco_like.json").write_text(json.dumps({"images": [{"id": [1], "file_name": 3}], "annotations": [7],
                                                    "categories": [None]}))
    (sub / "binary.json").write_bytes(bytes(range(256)) * 4)
    (work / "data" / "empty.json").write_text("")
    res = build(work, "--source", "auto", "--path", work / "data", "--out", work / "out", "--no-contact-sheet",
                "--skip-bad")
    if res.returncode is None or res.traceback:
        return refusal(res)
    if res.returncode != 0:
        return refusal(res)
    return Outcome.HANDLED, "built; unrelated files ignored or listed as bad records"


def _mapping_case(content: str | None, must_name: str = "--coco-mapping"):
    def run(work: Path):
        data = tiny_coco(work / "data")
        mapping = work / "mapping.json"
        if content is not None:
            mapping.write_text(content)
        res = build(work, "--source", "coco", "--path", data, "--out", work / "out", "--coco-mapping", mapping)
        return refusal(res, must_name)
    return run


def _acbf_case(text: str):
    def run(work: Path):
        (work / "book.acbf").write_text(text)
        return refusal(build(work, "--source", "acbf", "--path", work / "book.acbf", "--out", work / "out"),
                       "book.acbf")
    return run


def openmantra_wrong_types(work: Path):
    """OpenMantra pages with an image path of the wrong type (a number)."""
    (work / "annotation.json").write_text(json.dumps(
        [{"book_title": "b", "pages": [{"page_index": 0, "image_paths": {"ja": 5}, "frame": [], "text": []}]}]))
    return refusal(build(work, "--source", "openmantra", "--path", work / "annotation.json", "--out", work / "out"),
                   "annotation.json")


def _bytes_file_case(payload: bytes, source: str = "coco"):
    def run(work: Path):
        (work / "ann.json").write_bytes(payload)
        return refusal(build(work, "--source", source, "--path", work / "ann.json", "--out", work / "out"), "ann.json")
    return run


def _args_case(*args: str, must_name: str = ""):
    def run(work: Path):
        data = tiny_coco(work / "data")
        argv = [a.replace("DATA", str(data)).replace("OUT", str(work / "out")) for a in args]
        return refusal(run_cli(["build", *argv], cwd=work, timeout_s=60), must_name) if must_name \
            else refusal(run_cli(["build", *argv], cwd=work, timeout_s=60))
    return run


# --- a VLM that never answers ---------------------------------------------------------------------------------


class _Silent(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _NeverAnswer(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # read the request, then never answer
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(600)

    def log_message(self, *args):
        pass


class _Fails(_NeverAnswer):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _vlm_case(handler: type[http.server.BaseHTTPRequestHandler]):
    def run(work: Path):
        data = tiny_coco(work / "data")
        server = _Silent(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        try:
            t = time.perf_counter()
            res = build(work, "--source", "coco", "--path", data, "--out", work / "out", "--no-contact-sheet",
                        "--tasks", "panel_understanding,panel_reordering", "--pu-provider", "openai",
                        "--pu-model", "m", "--pu-base-url", url, "--pu-timeout", "1", "--pu-retries", "0",
                        timeout_s=90)
            took = time.perf_counter() - t
        finally:
            server.shutdown()
            server.server_close()
        if res.returncode == 2 and "unrecognized arguments" in res.stderr:
            return Outcome.HANG, "no option bounds the VLM wait (about 245 s per panel)"
        if res.returncode is None:
            return Outcome.HANG
        if res.traceback or res.returncode != 0:
            return refusal(res)
        report = json.loads((work / "out" / "build_report.json").read_text())
        return Outcome.HANDLED, f"{took:.0f} s; panel_understanding skipped: {report['skipped'].get('panel_understanding')}"
    return run


# --- the list --------------------------------------------------------------------------------------------------


def _case(name: str, run, description: str, *, fast: bool = False, timeout_s: float = 120) -> Case:
    return Case(name=name, area=AREA, run=run, description=description, fast=fast, timeout_s=timeout_s)


_BOX = ("annotations", 0, "bbox")
CASES: list[Case] = [
    # output folder
    _case("out-dot-in-checkout", out_dot_in_checkout, "--out . in a git checkout with an AI4VA-FG README", fast=True),
    _case("out-readme-mentions-ai4va", out_readme_mentions_ai4va, "--out folder whose README mentions AI4VA-FG",
          fast=True),
    _case("out-old-build-report", out_with_old_build_report, "--out folder with a build_report.json and user files"),
    _case("out-is-input", out_is_input, "--out equal to --path"),
    _case("out-contains-input", out_contains_input, "--out a parent of the input (AI4VA-FG README)", fast=True),
    _case("out-symlink-to-input", out_symlink_to_input, "--out a symlink to the input folder"),
    _case("out-is-file", out_is_file, "--out an existing file"),
    _case("rebuild-keeps-user-file", rebuild_keeps_user_file, "rebuild where a user added a file to the build"),
    _case("rebuild-previous-build", rebuild_previous_build, "rebuild into a previous build (must work)"),
    _case("out-read-only", out_read_only, "--out on a read-only location: refused before any work", fast=True),
    _case("stale-staging-killed-build", stale_staging_of_killed_build,
          "SIGKILLed build's .out.tmp-* removed by the next build; a look-alike kept", fast=True),
    _case("live-staging-kept", live_staging_is_kept, "a running build's staging folder survives a second build"),
    # stale caches
    _case("rebuild-changed-boxes-cache", rebuild_changed_boxes_cache,
          "rebuild in place with moved boxes; fresh load_dataset with the same cache", timeout_s=240),
    _case("same-name-builds-cache", same_name_builds_cache,
          "a/out and b/out with identical cards, different images; shared cache", timeout_s=240),
    # page images
    _case("truncated-jpeg-skip-bad", _image_case(_truncated_jpeg, strict=False),
          "a JPEG page cut to a third, all tasks, --skip-bad", fast=True),
    _case("truncated-jpeg-strict", _image_case(_truncated_jpeg, strict=True), "a JPEG page cut to a third, strict"),
    _case("tiny-png-skip-bad", _image_case(_tiny_png, strict=False), "a 100-byte PNG page, all tasks, --skip-bad"),
    _case("tiny-png-strict", _image_case(_tiny_png, strict=True), "a 100-byte PNG page, strict", fast=True),
    _case("bomb-page-skip-bad", bomb_page, "a 20000x20000 page (decompression bomb), --skip-bad", fast=True),
    _case("huge-page-skip-bad", huge_page, "a 12000x12000 page (144 MP), --skip-bad"),
    _case("huge-page-strict", huge_page_strict, "a 12000x12000 page (144 MP), strict"),
    _case("text-file-as-page", text_file_as_page, "a text file as a page image"),
    _case("missing-page-image", missing_page_image, "a page image that does not exist"),
    # COCO records
    _case("coco-bbox-string", _coco_case(_set(_BOX, "1234")), 'COCO "bbox": "1234" (strict)', fast=True),
    _case("coco-bbox-string-skip-bad", _coco_case(_set(_BOX, "1234"), skip_bad=True),
          'COCO "bbox": "1234" with --skip-bad'),
    _case("coco-bbox-bools", _coco_case(_set(_BOX, [True, True, True, True])), "COCO bbox of booleans"),
    _case("coco-bbox-nan", _coco_case(_set(_BOX, [float("nan"), 1, 2, 3])), "COCO bbox with NaN"),
    _case("coco-image-id-list", _coco_case(_set(("images", 0, "id"), [1])), "COCO image id a list", fast=True),
    _case("coco-image-id-float", _coco_case(_set(("images", 0, "id"), 1.5)), "COCO image id a float"),
    _case("coco-annotation-id-dict", _coco_case(_set(("annotations", 0, "id"), {"a": 1})),
          "COCO annotation id a dict"),
    _case("coco-annotation-image-id-list", _coco_case(_set(("annotations", 0, "image_id"), [1])),
          "COCO annotation image_id a list"),
    _case("coco-category-id-list", _coco_case(_set(("categories", 0, "id"), [1])), "COCO category id a list"),
    _case("coco-category-name-list", _coco_case(_set(("categories", 0, "name"), ["panel"])),
          "COCO category name a list"),
    _case("coco-file-name-int", _coco_case(_set(("images", 0, "file_name"), 5)), "COCO file_name a number"),
    _case("coco-segmentation-strings", _coco_case(_set(("annotations", 0, "segmentation"), [["1", "2", "3"]])),
          "COCO segmentation of strings"),
    _case("coco-license-id-list", _coco_case(_set(("licenses", 0, "id"), [1])), "COCO licence id a list"),
    _case("coco-top-level-list", _bytes_file_case(b"[1, 2, 3]"), "a COCO file that is a JSON list"),
    _case("coco-empty-file", _bytes_file_case(b""), "an empty COCO file"),
    _case("coco-binary-file", _bytes_file_case(bytes(range(256)) * 8), "binary bytes as the COCO file"),
    _case("deep-json-coco", deep_json_coco, "a 200 000-level nested JSON as --source coco", fast=True),
    _case("deep-json-openmantra", deep_json_openmantra, "a 200 000-level nested JSON as --source openmantra"),
    _case("deep-json-auto", deep_json_auto, "a 200 000-level nested JSON among good data, --source auto"),
    _case("unrelated-json-auto", unrelated_json_auto, "unrelated *.json files among good data, --source auto",
          fast=True),
    # mappings
    _case("coco-mapping-bad-value", _mapping_case('{"panel": 5}'), '--coco-mapping {"panel": 5}', fast=True),
    _case("coco-mapping-string-keys", _mapping_case('{"identity": "Name"}'),
          '--coco-mapping {"identity": "Name"} (a string, not a list)'),
    _case("coco-mapping-not-object", _mapping_case("[1, 2]"), "--coco-mapping that is a JSON list"),
    _case("coco-mapping-deep", _mapping_case("[" * 100_000 + "]" * 100_000), "--coco-mapping nested 100 000 deep"),
    _case("coco-mapping-missing", _mapping_case(None), "--coco-mapping file that does not exist"),
    _case("coco-mapping-unknown-field", _mapping_case('{"panels": ["frame"]}'), "--coco-mapping unknown field"),
    _case("coco-mapping-bad-direction", _mapping_case('{"reading_direction": 1}'),
          "--coco-mapping reading_direction 1"),
    # other formats
    _case("acbf-malformed-xml", _acbf_case("<ACBF><body><page>"), "ACBF file that is not well-formed XML"),
    _case("acbf-deep-xml", _acbf_case("<a>" * 50_000 + "</a>" * 50_000), "ACBF XML nested 50 000 deep"),
    _case("openmantra-wrong-types", openmantra_wrong_types, "OpenMantra image path a number"),
    # arguments
    _case("missing-path", _args_case("--source", "auto", "--path", "/nonexistent/ai4va", "--out", "OUT"),
          "--path that does not exist"),
    _case("source-path-mismatch", _args_case("--source", "coco", "--source", "auto", "--path", "DATA", "--out", "OUT"),
          "two --source, one --path"),
    _case("bad-split-ratios", _args_case("--source", "coco", "--path", "DATA", "--out", "OUT", "--split-ratios", "1,1"),
          "--split-ratios 1,1"),
    _case("bad-max-page-pixels", _args_case("--source", "coco", "--path", "DATA", "--out", "OUT",
                                            "--max-page-pixels", "lots"), "--max-page-pixels lots"),
    _case("tiny-max-page-pixels", _args_case("--source", "coco", "--path", "DATA", "--out", "OUT",
                                             "--max-page-pixels", "1000", must_name="max-page-pixels"),
          "--max-page-pixels 1000: every page over the limit"),
    _case("bad-pu-timeout", _args_case("--source", "coco", "--path", "DATA", "--out", "OUT", "--pu-provider", "openai",
                                       "--pu-base-url", "http://127.0.0.1:9/v1", "--pu-timeout", "-1"),
          "--pu-timeout -1"),
    # VLM
    _case("vlm-never-answers", _vlm_case(_NeverAnswer), "a VLM endpoint that never answers, --pu-timeout 1",
          timeout_s=120),
    _case("vlm-server-errors", _vlm_case(_Fails), "a VLM endpoint answering 500, --pu-retries 0"),
]
"""The builder cases (see the module docstring)."""

assert len({c.name for c in CASES}) == len(CASES)

if __name__ == "__main__":  # pragma: no cover - convenience: run one case by name
    import tempfile

    for case in CASES:
        if case.name in sys.argv[1:]:
            with tempfile.TemporaryDirectory() as tmp:
                print(case.name, case.run(Path(tmp)))
