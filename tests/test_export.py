"""Parquet export + dataset card: round trip through load_dataset in a fresh Python, card YAML,
sharding, empty splits / tasks, atomic replacement of the output folder."""

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ai4va_fg_dataset.build.dataset_card import CardInfo, SourceInfo
from ai4va_fg_dataset.build.export import staging_dir, write_dataset
from ai4va_fg_dataset.build.splits import assign_splits
from ai4va_fg_dataset.schema import Sample, features

PAGES = [f"acbf/book/{i:02d}" for i in range(10)]
SPLITS = assign_splits(PAGES, seed=0)


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10 * i, 100, 200)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _samples():
    out = []
    for i, page in enumerate(PAGES):
        drawn = Image.new("RGB", (80, 60), (i * 20, 0, 0))
        drawn.putpixel((3, 4), (1, 2, 3))
        out.append(
            Sample(id=f"depth_comparison/{page}/0", task="depth_comparison", image=drawn,
                   question=f"Which is closer {i}?", choices=["left", "right"], answer="AB"[i % 2],
                   answer_type="choice", page_id=page, source="acbf", width=80, height=60,
                   bboxes=[[1.5, 2.0, 30.25, 20.0], [40, 10, 79, 59]])
        )
        if SPLITS[page] != "test":  # panel_reordering gets no test rows: that split is left out
            out.append(
                Sample(id=f"panel_reordering/{page}/0", task="panel_reordering", image=_jpeg(i),
                       question="Where does the panel go?", choices=["1", "2"], answer="A",
                       answer_type="choice", page_id=page, source="acbf", width=64, height=48)
            )
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ds"
    card = CardInfo(sources=[SourceInfo("acbf", 10, "CC BY-NC-SA 3.0 US", "Cory Doctorow")],
                    skipped_tasks={"character_counting": "no character identities in acbf"}, seed=0)
    counts = write_dataset(_samples(), out, splits=SPLITS, card=card, max_shard_rows=3)
    return out, counts


def _env(tmp: Path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp / "hf_cache"), "HF_HOME": str(tmp / "hf_home")}


def test_counts_and_shards(built):
    out, counts = built
    assert counts == {
        "depth_comparison": {"train": 8, "validation": 1, "test": 1},
        "panel_reordering": {"train": 8, "validation": 1, "test": 0},
    }
    assert sorted(p.name for p in (out / "depth_comparison").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00003.parquet", "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet", "validation-00000-of-00001.parquet"]
    assert not list((out / "panel_reordering").glob("test-*"))
    assert not list(out.rglob("*.partial"))
    assert not (out / "character_counting").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".ds.")]  # no staging leftovers


def test_card_yaml(built):
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    out, _ = built
    card = DatasetCard.load(out / "README.md")
    configs = {c["config_name"]: c for c in card.data["configs"]}
    assert set(configs) == {"default", "depth_comparison", "panel_reordering"}
    # the default config (all tasks) is marked and lists the per-task shards themselves, no copy
    assert [n for n, c in configs.items() if c.get("default")] == ["default"]
    default = {d["split"]: d["path"] for d in configs["default"]["data_files"]}
    per_task = {s: [p for t in ("depth_comparison", "panel_reordering") for d in configs[t]["data_files"]
                    if d["split"] == s for p in d["path"]] for s in ("train", "validation", "test")}
    assert default == per_task
    assert default["test"] == ["depth_comparison/test-00000-of-00001.parquet"]  # panel_reordering has no test rows
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == sorted(
        p for paths in default.values() for p in paths)
    splits = {d["split"]: d["path"] for d in configs["panel_reordering"]["data_files"]}
    assert set(splits) == {"train", "validation"}
    for paths in splits.values():
        assert all((out / p).is_file() for p in paths)
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert infos["depth_comparison"].features == features()
    assert infos["depth_comparison"].splits["test"].num_examples == 1
    assert infos["default"].features == features()
    assert {s: i.num_examples for s, i in infos["default"].splits.items()} == {"train": 16, "validation": 2, "test": 1}
    text = card.text
    assert "| `depth_comparison` | 8 | 1 | 1 | 10 |" in text
    assert "`character_counting`: no samples (no character identities in acbf)" in text
    assert "`panel_reordering` has no `test` rows" in text
    assert "CC BY-NC-SA 3.0 US" in text and "2511.06490" in text
    assert "| bboxes | list[list[float32, 4]] |" in text
    assert "| `default` (all tasks) | 16 | 2 | 1 | 19 |" in text
    assert 'ds = load_dataset("path/to/this/folder")  # or the Hub repo id' in text


def test_default_config_leaves_out_splits_no_task_has():
    """No task with test rows: ``default`` has no test split (datasets 5.2 cannot load an empty one);
    no rows at all: no config (the build refuses to write such a dataset anyway)."""
    from datasets.utils.metadata import MetadataConfigs

    from ai4va_fg_dataset.build.dataset_card import card_body, card_data

    counts = {"panel_reordering": {"train": 3, "validation": 1, "test": 0},
              "dialog_reordering": {"train": 2, "validation": 0, "test": 0}}
    files = {"panel_reordering": {"train": ["panel_reordering/train-00000-of-00001.parquet"],
                                  "validation": ["panel_reordering/validation-00000-of-00001.parquet"]},
             "dialog_reordering": {"train": ["dialog_reordering/train-00000-of-00001.parquet"]}}
    data = card_data(counts, files, CardInfo())
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert configs.get_default_config_name() == "default"
    assert configs["default"]["data_files"] == [
        {"split": "train", "path": ["dialog_reordering/train-00000-of-00001.parquet",  # TASKS order
                                    "panel_reordering/train-00000-of-00001.parquet"]},
        {"split": "validation", "path": ["panel_reordering/validation-00000-of-00001.parquet"]},
    ]
    body = card_body(counts, CardInfo())
    assert "no task has `test` rows; the split is left out of the `default` config." in body
    assert 'row = ds["validation"][0]' in body  # the example reads a split that exists
    assert "configs" not in card_data({}, {}, CardInfo()).to_dict()


def test_round_trip_load_dataset_in_fresh_python(built, tmp_path):
    out, _ = built
    script = textwrap.dedent(
        f"""
        import hashlib, json
        from datasets import load_dataset, Image
        ds = load_dataset({str(out)!r}, "depth_comparison")
        pr = load_dataset({str(out)!r}, "panel_reordering")
        f = ds["train"].features
        rows = sorted(ds["train"], key=lambda r: r["id"])
        raw = pr["train"].cast_column("image", Image(decode=False))
        everything = load_dataset({str(out)!r})  # no config name: the default config, all tasks
        by_id = {{r["id"]: r for r in everything["train"]}}
        drawn = by_id[rows[0]["id"]]["image"]
        card = open({str(out / "README.md")!r}).read()
        snippet = card.split("```python")[1].split("```")[0].replace("path/to/this/folder", {str(out)!r})
        scope = {{}}
        exec(snippet, scope)  # the card's own example
        print(json.dumps({{
            "default_splits": {{k: v.num_rows for k, v in everything.items()}},
            "default_tasks": {{k: sorted(set(v["task"])) for k, v in everything.items()}},
            "default_image": [type(everything["train"].features["image"]).__name__, drawn.format,
                              list(drawn.getpixel((3, 4))), by_id[rows[0]["id"]]["bboxes"]],
            "snippet": [scope["row"]["task"], {{k: v.num_rows for k, v in scope["one"].items()}},
                        {{k: v.num_rows for k, v in scope["same"].items()}}],
            "splits": {{k: v.num_rows for k, v in ds.items()}},
            "pr_splits": sorted(pr.keys()),
            "image_feature": type(f["image"]).__name__,
            "bboxes_feature": repr(f["bboxes"]),
            "first": {{k: rows[0][k] for k in ("id", "question", "choices", "answer", "bboxes", "width", "height")}},
            "pixel": list(rows[0]["image"].getpixel((3, 4))),
            "format": rows[0]["image"].format,
            "raw_sha": {{r["id"]: hashlib.sha256(r["image"]["bytes"]).hexdigest() for r in raw}},
        }}))
        """
    )
    res = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=_env(tmp_path),
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["splits"] == {"train": 8, "validation": 1, "test": 1}
    # load_dataset(PATH): every task's rows, as many per split as the task configs together
    assert got["default_splits"] == {"train": 8 + 8, "validation": 1 + 1, "test": 1 + 0}
    assert got["default_tasks"] == {"train": ["depth_comparison", "panel_reordering"],
                                    "validation": ["depth_comparison", "panel_reordering"],
                                    "test": ["depth_comparison"]}
    assert got["default_image"] == ["Image", "PNG", [1, 2, 3], [[1.5, 2.0, 30.25, 20.0], [40.0, 10.0, 79.0, 59.0]]]
    assert got["snippet"] == ["depth_comparison", {"train": 8, "validation": 1, "test": 1},
                              {"train": 8, "validation": 1, "test": 1}]
    assert got["pr_splits"] == ["train", "validation"]
    assert got["image_feature"] == "Image"
    assert got["bboxes_feature"] == "List(List(Value('float32'), length=4))"
    first_page = min(p for p in PAGES if SPLITS[p] == "train")
    i = PAGES.index(first_page)
    assert got["first"] == {
        "id": f"depth_comparison/{first_page}/0", "question": f"Which is closer {i}?",
        "choices": ["left", "right"], "answer": "AB"[i % 2],
        "bboxes": [[1.5, 2.0, 30.25, 20.0], [40.0, 10.0, 79.0, 59.0]], "width": 80, "height": 60,
    }
    assert got["pixel"] == [1, 2, 3]  # drawn images are lossless PNG
    assert got["format"] == "PNG"
    for sid, sha in got["raw_sha"].items():  # raw page bytes are kept byte for byte
        page = sid.split("/", 1)[1].rsplit("/", 1)[0]
        assert sha == hashlib.sha256(_jpeg(PAGES.index(page))).hexdigest()


def test_bad_samples_are_rejected(tmp_path):
    s = _samples()
    with pytest.raises(ValueError, match="duplicate sample id 'depth_comparison/acbf/book/00/0'"):
        write_dataset([s[0], s[0]], tmp_path / "a", splits=SPLITS)
    with pytest.raises(ValueError, match="page 'acbf/book/00' has no split"):
        write_dataset([s[0]], tmp_path / "b", splits={})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not list(tmp_path.iterdir())  # failed writes leave no staging folder behind


def test_failed_write_keeps_previous_output(built, tmp_path):
    out, _ = built
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def exploding():
        yield from _samples()[:5]
        raise RuntimeError("generator failed midway")

    with pytest.raises(RuntimeError, match="midway"):
        write_dataset(exploding(), out, splits=SPLITS, max_shard_rows=2)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_successful_write_replaces_previous_output(tmp_path):
    """A rebuild replaces the files the previous build wrote (listed in its manifest), old shards
    included; a file someone else put in the folder makes it refuse and keeps that file."""
    from ai4va_fg_dataset.build.export import MANIFEST, read_manifest

    out = tmp_path / "ds"
    write_dataset(_samples(), out, splits=SPLITS)
    assert "panel_reordering/train-00000-of-00001.parquet" in read_manifest(out)["files"]
    counts = write_dataset(_samples()[:1], out, splits=SPLITS)
    assert sum(sum(c.values()) for c in counts.values()) == 1
    assert not (out / "panel_reordering").exists()  # the old build's own shards are gone
    assert sorted(read_manifest(out)["files"]) == ["README.md", "depth_comparison/train-00000-of-00001.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    (out / "notes.txt").write_text("not the builder's")
    with pytest.raises(FileExistsError, match=r"holds files the build did not write \(notes.txt\)"):
        write_dataset(_samples(), out, splits=SPLITS)
    assert (out / "notes.txt").read_text() == "not the builder's" and (out / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a previous AI4VA-FG build"), staging_dir(foreign):
        pass
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_drawn_jpeg_scans_stay_jpeg_and_others_png():
    """A page drawn on top of a JPEG scan is re-encoded as JPEG (quality 95), anything else as PNG."""
    import io

    from PIL import Image

    from ai4va_fg_dataset.core.images import encode_image

    scan = Image.new("RGB", (64, 48), (200, 180, 160))
    scan.info["source_format"] = "JPEG"
    cell = encode_image(scan)
    back = Image.open(io.BytesIO(cell["bytes"]))
    assert back.format == "JPEG" and back.size == (64, 48)
    assert all(abs(a - b) <= 3 for a, b in zip(back.getpixel((10, 10)), (200, 180, 160)))
    flat = Image.new("RGB", (64, 48), (1, 2, 3))
    flat.info["source_format"] = "PNG"
    assert Image.open(io.BytesIO(encode_image(flat)["bytes"])).format == "PNG"
    assert Image.open(io.BytesIO(encode_image(Image.new("RGB", (4, 4)))["bytes"])).format == "PNG"


def test_decode_image_reads_every_cell_form(tmp_path):
    """decode_image is the inverse of encode_image for every form a sample image takes."""
    import io
    from concurrent.futures import Future

    import pytest
    from PIL import Image

    from ai4va_fg_dataset.core.images import decode_image, encode_image

    page = Image.new("P", (6, 4), 3)
    cell = encode_image(page)
    (tmp_path / "p.png").write_bytes(cell["bytes"])
    done = Future()
    done.set_result(cell)
    expected = page.convert("RGB").tobytes()
    for form in (page, cell, cell["bytes"], str(tmp_path / "p.png"), tmp_path / "p.png",
                 {"bytes": None, "path": str(tmp_path / "p.png")}, done):
        img = decode_image(form)
        assert img.mode == "RGB" and img.size == (6, 4) and img.tobytes() == expected
    with pytest.raises(TypeError, match="cannot read an image from a int"):
        decode_image(3)
    with pytest.raises(OSError):
        decode_image(io.BytesIO(b"not an image").getvalue())


def test_only_a_valid_manifest_listing_every_file_makes_a_previous_build(tmp_path):
    """Forged, foreign-format or partial manifests do not make a folder replaceable."""
    from ai4va_fg_dataset.build.export import MANIFEST, check_output_dir, foreign_entries, write_manifest

    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("# AI4VA-FG")
    (out / "task").mkdir()
    (out / "task" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    manifest = write_manifest(out)
    assert foreign_entries(out) == [] and check_output_dir(out) == out
    assert set(manifest["files"]) == {"README.md", "task/train-00000-of-00001.parquet"}
    good = (out / MANIFEST).read_text()
    for forged in (good.replace('"ai4va-fg-build"', '"other-tool"'), good.replace('"version": 1', '"version": 99'),
                   good.replace('"README.md"', '"../README.md"'), "{", "[" * 100_000 + "]" * 100_000, "[]"):
        (out / MANIFEST).write_text(forged)
        assert foreign_entries(out) is None
        with pytest.raises(FileExistsError, match="is not a previous AI4VA-FG build"):
            check_output_dir(out)
    (out / MANIFEST).write_text(good)
    (out / "link").symlink_to(tmp_path)  # a symlink is never the builder's, even to a listed name
    assert foreign_entries(out) == ["link"]
    (out / "link").unlink()
    (out / "task" / "train-00000-of-00001.parquet").unlink()  # fewer files than listed: still a build
    assert foreign_entries(out) == [] and check_output_dir(out) == out
