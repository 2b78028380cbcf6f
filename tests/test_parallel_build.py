"""The parallel build (issue 13): ``--num-proc N`` and ``--engine ray`` write the same dataset byte
for byte as a single-process build with the same seed; the progress bar counts pages; a page image
that does not decode is still a bad record; and samples stream to the Parquet writer instead of
piling up in memory (the cause of the old 0.75 MiB per page of RSS)."""

from __future__ import annotations

import importlib.util
import json
import random
import weakref
from collections import Counter
from pathlib import Path

import pytest

from ai4va_fg_dataset.build import parallel, pipeline
from ai4va_fg_dataset.build.contact_sheet import select_samples
from ai4va_fg_dataset.build.export import BUILD_MARKER, MANIFEST
from ai4va_fg_dataset.errors import AnnotationError
from ai4va_fg_dataset.schema import Sample
from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

PAGES = 6


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """6 synthetic AI4VA pages (every task but Panel Understanding has samples)."""
    return make_synthetic_ai4va(tmp_path_factory.mktemp("syn"), n_pages=PAGES, seed=3)


def _build(ann: Path, out: Path, **kwargs):
    from rich.console import Console

    return pipeline.build([("synthetic", ann)], out, seed=5, ratios=(0.6, 0.2, 0.2),
                          console=Console(quiet=True), **kwargs)


def _files(out: Path) -> dict[str, bytes]:
    """Every file of a build but the report and the manifest (they hold timings / the report's hash)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (BUILD_MARKER, MANIFEST)}


def _report(out: Path) -> dict:
    report = json.loads((out / BUILD_MARKER).read_text())
    report.pop("timings")
    return report


@pytest.fixture(scope="module")
def single(synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "ds"
    _build(synthetic, out, num_proc=1)
    return out


def test_num_proc_2_is_byte_identical_to_1(single, synthetic, tmp_path):
    out = tmp_path / "ds"
    _build(synthetic, out, num_proc=2)
    one, two = _files(single), _files(out)
    assert sorted(one) == sorted(two)
    assert any(name.endswith(".parquet") for name in one) and "contact_sheet.png" in one
    for name in one:
        assert one[name] == two[name], f"{name} differs between --num-proc 1 and 2"
    assert _report(single) == _report(out)
    assert _report(out)["total_samples"] > 50 and len(_report(out)["counts"]) >= 5


def test_progress_counts_pages(synthetic, tmp_path, monkeypatch):
    calls: list[int] = []

    def recording_bar(total, console):
        bar, advance = real(total, console)
        calls.append(total)

        def count(*args, **kwargs):
            calls.append(-1)
            advance(*args, **kwargs)
        return bar, count

    real = pipeline._progress_bar
    monkeypatch.setattr(pipeline, "_progress_bar", recording_bar)
    _build(synthetic, tmp_path / "ds", num_proc=2, contact_sheet=False)
    assert calls[0] == PAGES  # the bar's total: pages
    assert calls.count(-1) == PAGES  # advanced once per page, not per sample or per task


def test_bad_page_image_is_still_a_bad_record(synthetic, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    for f in synthetic.parent.iterdir():
        (pages / f.name).write_bytes(f.read_bytes())
    broken = sorted(pages.glob("*.png"))[4]
    broken.write_bytes(broken.read_bytes()[:400])  # truncated: the header reads, the pixels do not
    ann = pages / synthetic.name
    tasks = ["panel_reordering", "character_counting"]  # two drawing tasks keep this test short
    with pytest.raises(AnnotationError, match=broken.name):
        _build(ann, tmp_path / "strict", num_proc=2, tasks=tasks)
    assert not (tmp_path / "strict").exists()
    outs = {}
    for n in (1, 2):
        outs[n] = _build(ann, tmp_path / f"skip{n}", num_proc=n, skip_bad=True, tasks=tasks, contact_sheet=False)
    assert outs[1].bad_records == outs[2].bad_records
    assert [Path(r["file"]).name for r in outs[2].bad_records] == [broken.name]
    assert outs[2].report["pages"] == PAGES - 1
    assert outs[2].report["skipped"]["panel_reordering"][parallel.BAD_IMAGE_REASON] == 1
    assert _files(tmp_path / "skip1") == _files(tmp_path / "skip2")


def test_samples_stream_to_the_writer(synthetic, tmp_path, monkeypatch):
    """While the Parquet writer consumes the stream, only about one page of samples (plus the
    contact sheet's few) is alive: the build no longer keeps every sample until export."""
    alive = Counter()
    init = Sample.__post_init__

    def register(self):
        init(self)
        alive["n"] += 1
        weakref.finalize(self, alive.subtract, ["n"])

    monkeypatch.setattr(Sample, "__post_init__", register)  # num_proc=1: every sample is made here
    real = pipeline.write_parquet
    seen = {"max_live": 0, "total": 0}

    def watching(samples, out, **kwargs):
        def watch():
            for s in samples:
                seen["max_live"] = max(seen["max_live"], alive["n"])
                seen["total"] += 1
                yield s
        return real(watch(), out, **kwargs)

    monkeypatch.setattr(pipeline, "write_parquet", watching)
    result = _build(synthetic, tmp_path / "ds", num_proc=1)
    per_page_max = max(Counter(s.rsplit("/", 1)[0] for s in _ids(tmp_path / "ds")).values())
    assert seen["total"] == result.report["total_samples"]
    assert seen["max_live"] <= 8 * 7 + per_page_max < seen["total"]


def _ids(out: Path) -> list[str]:
    import pyarrow.parquet as pq

    ids = []
    for f in out.rglob("*.parquet"):
        ids += [i.split("/", 1)[1] for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
    return ids


def test_sheet_picker_matches_select_samples():
    rng = random.Random(0)
    tasks = ["action_recognition", "depth_comparison", "character_counting"]
    samples = [Sample(id=f"{t}/p{i}/{j}", task=t, image=b"", question="q", answer="A", answer_type="choice",
                      page_id=f"s/p{i}", source="s", width=10, height=10, choices=["a", "b"])
               for i in range(40) for t in tasks for j in range(rng.randint(0, 3))]
    for n, seed in ((8, 0), (3, 7), (50, 1)):
        picker = parallel.SheetPicker(n, seed)
        for s in picker.tap(samples):
            pass
        assert [s.id for s in picker.chosen()] == [s.id for s in select_samples(samples, n, seed)]


def test_num_proc_must_be_positive(synthetic, tmp_path):
    with pytest.raises(ValueError, match="num_proc"):
        _build(synthetic, tmp_path / "ds", num_proc=0)
    with pytest.raises(ValueError, match="engine 'spark'"):
        _build(synthetic, tmp_path / "ds", engine="spark")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray Data is not installed (pip install 'ai4va-fg[scale]'): --engine ray not tested")
def test_ray_engine_is_byte_identical(single, synthetic, tmp_path):
    out = tmp_path / "ds"
    _build(synthetic, out, engine="ray", num_proc=2)  # a local single-machine Ray, 2 CPUs, no dashboard
    one, ray_files = _files(single), _files(out)
    assert sorted(one) == sorted(ray_files)
    for name in one:
        assert one[name] == ray_files[name], f"{name} differs between --engine local and ray"
    assert _report(single) == _report(out)
