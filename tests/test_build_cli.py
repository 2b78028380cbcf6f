"""The build and the ``ai4va-fg`` CLI end to end: embedded demo data, the synthetic AI4VA-schema
set, bad-input policy (strict exit 2 / --skip-bad), atomic output, ``load_dataset(DIR)`` without a
config name (also as ``load_dataset("ai4va-fg")`` from the working directory) and the lazy ``report``
subcommand. push-to-hub is tested against a fake Hub in test_push_to_hub.py."""

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ai4va_fg_dataset
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.schema import SPLITS, TASKS

DEMO = Path(ai4va_fg_dataset.__file__).parent / "demo_data"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)


def _corrupt_demo(tmp_path: Path) -> Path:
    """A copy of the demo data whose OpenMantra JSON has one inverted frame box."""
    root = tmp_path / "bad_demo"
    shutil.copytree(DEMO, root)
    ann = root / "open-mantra" / "annotation.json"
    data = json.loads(ann.read_text())
    data[0]["pages"][0]["frame"][1]["w"] = -40
    ann.write_text(json.dumps(data))
    return root


def test_strict_mode_exit_2_names_file_and_record(tmp_path):
    bad = _corrupt_demo(tmp_path)
    out = tmp_path / "out"
    res = subprocess.run(
        [str(Path(sys.executable).parent / "ai4va-fg"), "build", "--source", "auto", "--path", str(bad),
         "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, **OFFLINE},
    )
    assert res.returncode == 2, res.stderr
    assert f"{bad / 'open-mantra' / 'annotation.json'}: tojime_no_siora page 15 frame 1" in res.stderr
    assert "inverted" in res.stderr and "--skip-bad" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_demo"]  # no staging folder left


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["build", "--source", "acbf", "--path", str(tmp_path / "missing.acbf"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["build", "--source", "acbf", "--source", "auto", "--path", str(DEMO), "--out",
                 str(tmp_path / "o")]) == 2
    assert "2 --source but 1 --path" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(tmp_path / "o"),
              "--tasks", "panel_reordering,nonsense"])
    assert exc.value.code == 2
    assert "unknown task(s) ['nonsense']" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(foreign)]) == 2
    assert "not a previous AI4VA-FG build" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


LAZY_CHECK = (
    "import sys, ai4va_fg_dataset.cli, ai4va_fg_dataset.build; "
    "print(any(m.startswith(('lmms_eval', 'trl')) for m in sys.modules))"
)


def test_report_subcommand_is_lazy(monkeypatch):
    res = subprocess.run(
        [sys.executable, "-c", LAZY_CHECK],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert res.stdout.strip() == "False"
    seen = []
    fake = types.ModuleType("lmms_eval_tasks.report")
    fake.main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "lmms_eval_tasks.report", fake)
    assert main(["report", "--results", "x.json"]) == 3
    assert seen == [["--results", "x.json"]]


# --- end-to-end builds with the real adapters and generators -------------------------------------


def _parquet_rows(out: Path) -> dict[str, dict[str, list[str]]]:
    """``{task: {split: [ids]}}`` read back from the shards (pyarrow, id column only)."""
    import pyarrow.parquet as pq

    rows: dict[str, dict[str, list[str]]] = {}
    for shard in sorted(out.glob("*/*.parquet")):
        split = shard.name.split("-", 1)[0]
        ids = pq.read_table(shard, columns=["id"]).column("id").to_pylist()
        rows.setdefault(shard.parent.name, {}).setdefault(split, []).extend(ids)
    return {t: {s: sorted(ids) for s, ids in by_split.items()} for t, by_split in rows.items()}


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "ai4va_fg"
    code = main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(out), "--seed", "0"])
    return code, out


def test_demo_build_counts_report_and_card(demo_build, capsys):
    from huggingface_hub import DatasetCard

    from ai4va_fg_dataset.adapters import detect_sources, load_source
    from ai4va_fg_dataset.errors import BadRecordLog
    from ai4va_fg_dataset.tasks import default_generators, generate_samples

    code, out = demo_build
    assert code == 0
    report = json.loads((out / "build_report.json").read_text())
    assert {e["name"]: e["pages"] for e in report["sources"]} == {"acbf": 3, "mimi-eunice": 4, "openmantra": 6}
    assert report["pages"] == 13 and sum(report["pages_per_split"].values()) == 13
    assert report["bad_records"] == []
    # the demo sources feed dialog and panel reordering and (Mimi & Eunice speaker labels) speaker
    # attribution; every other task is reported with a reason
    assert set(report["counts"]) == {"dialog_reordering", "panel_reordering", "speaker_attribution"}
    assert "no VLM client" in report["tasks_without_samples"]["panel_understanding"]
    assert "ACBF names characters only at book level" in report["tasks_without_samples"]["character_counting"]
    for e in report["sources"]:
        assert set(e["capabilities"]) == set(TASKS)

    # every generated sample is in the Parquet output, in the split of its page, exactly once
    pages = [p for name, path in detect_sources(DEMO) for p in load_source(name, path, log=BadRecordLog())]
    samples, _ = generate_samples(pages, seed=0, generators=default_generators())
    written = _parquet_rows(out)
    assert sorted(i for t in written.values() for ids in t.values() for i in ids) == sorted(s.id for s in samples)
    for task, by_split in report["counts"].items():
        assert {s: len(written[task].get(s, [])) for s in SPLITS} == by_split
        assert sum(by_split.values()) == sum(s.task == task for s in samples) > 0

    card = DatasetCard.load(out / "README.md")
    assert sorted(c["config_name"] for c in card.data["configs"]) == [
        "default", "dialog_reordering", "panel_reordering", "speaker_attribution"]
    assert "`character_counting`: no samples" in card.text and "CC BY-NC 4.0" in card.text
    from PIL import Image

    assert Image.open(out / "contact_sheet.png").size == (1600, 1200)


LOAD_ALL = """
import json, os, sys
from datasets import get_dataset_config_names, load_dataset
out, work = sys.argv[1], sys.argv[2]
tasks = [c for c in get_dataset_config_names(out) if c != "default"]
everything = load_dataset(out)  # no config name
per_task = {t: load_dataset(out, t) for t in tasks}
images = [r["image"] for split in everything.values() for r in split.select(range(1))]
by_name = {}
for case in ("folder", "symlink", "nothing"):  # load_dataset("ai4va-fg") with cwd = the parent folder
    os.chdir(os.path.join(work, case))
    try:
        ds = load_dataset("ai4va-fg", cache_dir=os.path.join(work, "cache-" + case))
        by_name[case] = {k: v.num_rows for k, v in ds.items()}
    except Exception as exc:
        by_name[case] = type(exc).__name__
print(json.dumps({
    "configs": get_dataset_config_names(out),
    "default": {k: v.num_rows for k, v in everything.items()},
    "tasks": {k: sorted(set(v["task"])) for k, v in everything.items()},
    "sum_of_tasks": {s: sum(d[s].num_rows for d in per_task.values() if s in d) for s in ("train", "validation", "test")},
    "per_task_splits": {t: sorted(d) for t, d in per_task.items()},
    "images": [[type(im).__name__, im.size[0] > 0] for im in images],
    "by_name": by_name,
}))
"""


def test_demo_build_loads_without_config_name(demo_build, tmp_path):
    """``load_dataset(DIR)`` returns every task's rows (the ``default`` config) in a fresh Python, offline;
    ``load_dataset("ai4va-fg")`` finds a folder, or a relative symlink to the build (what ``make`` may
    put in the repo root), of that name in the working directory."""
    _, out = demo_build
    (tmp_path / "folder").mkdir()
    shutil.copytree(out, tmp_path / "folder" / "ai4va-fg")
    (tmp_path / "symlink").mkdir()
    (tmp_path / "symlink" / "ai4va-fg").symlink_to(os.path.relpath(out, tmp_path / "symlink"))
    (tmp_path / "nothing").mkdir()  # control: no such folder, offline -> an error, not a cached copy
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf_home"), "HF_DATASETS_CACHE": str(tmp_path / "c")}
    res = subprocess.run([sys.executable, "-c", LOAD_ALL, str(out), str(tmp_path)], check=False, capture_output=True,
                         text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    report = json.loads((out / "build_report.json").read_text())
    assert got["configs"] == ["default", "dialog_reordering", "panel_reordering", "speaker_attribution"]
    expected = {s: sum(c[s] for c in report["counts"].values()) for s in SPLITS}
    assert got["default"] == got["sum_of_tasks"] == expected
    # the demo's panel_reordering has no validation rows: its config leaves the split out, default has
    # only dialog_reordering rows there
    assert report["counts"]["panel_reordering"]["validation"] == 0
    assert got["per_task_splits"] == {"dialog_reordering": ["test", "train", "validation"],
                                      "panel_reordering": ["test", "train"], "speaker_attribution": ["train"]}
    assert got["tasks"] == {"train": ["dialog_reordering", "panel_reordering", "speaker_attribution"],
                            "validation": ["dialog_reordering"],
                            "test": ["dialog_reordering", "panel_reordering"]}
    assert all(kind.endswith("ImageFile") and ok for kind, ok in got["images"]), got["images"]
    assert got["by_name"]["folder"] == got["by_name"]["symlink"] == expected
    # control: without the folder, offline, datasets tries the Hub ("Couldn't reach 'ai4va-fg' on the Hub"),
    # so above it was the folder of the working directory that was loaded, not a cached copy
    assert got["by_name"]["nothing"] == "ConnectionError"


def test_same_seed_same_dataset(demo_build, tmp_path):
    _, out = demo_build
    again = tmp_path / "again"
    assert main(["build", "--source", "acbf", "--path", str(DEMO / "craphound" / "craphound-1.1.acbf"),
                 "--source", "openmantra", "--path", str(DEMO / "open-mantra" / "annotation.json"),
                 "--source", "mimi-eunice", "--path", str(DEMO / "mimi-eunice"),
                 "--out", str(again), "--seed", "0", "--no-contact-sheet"]) == 0
    assert _parquet_rows(again) == _parquet_rows(out)  # sources in another order: same rows, same splits
    assert not (again / "contact_sheet.png").exists()


def test_skip_bad_lists_the_record_and_exits_0(tmp_path, capsys):
    bad = _corrupt_demo(tmp_path)
    out = tmp_path / "out"
    code = main(["build", "--source", "auto", "--path", str(bad), "--out", str(out), "--skip-bad",
                 "--tasks", "panel_reordering,dialog_reordering", "--no-contact-sheet"])
    assert code == 0
    report = json.loads((out / "build_report.json").read_text())
    assert report["bad_records"] == [{
        "file": str(bad / "open-mantra" / "annotation.json"),
        "record": "tojime_no_siora page 15 frame 1",
        "reason": "frame: bbox [325.0, 4.0, 285.0, 249.0] is inverted or has zero area (need x1<x2, y1<y2)",
    }]
    assert report["tasks_requested"] == ["panel_reordering", "dialog_reordering"]
    assert "1 bad records skipped" in capsys.readouterr().out
    assert "1 bad annotation records were skipped" in (out / "README.md").read_text()


def test_failed_rebuild_keeps_previous_output(demo_build, tmp_path, monkeypatch, capsys):
    _, demo_out = demo_build
    out = tmp_path / "ds"
    shutil.copytree(demo_out, out)
    before = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*")}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full while drawing the contact sheet")

    monkeypatch.setattr("ai4va_fg_dataset.build.contact_sheet.make_contact_sheet", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(out)])
    assert {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no staging / old folder left


def test_synthetic_ai4va_build_feeds_every_closed_task(tmp_path):
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    ann = make_synthetic_ai4va(tmp_path / "syn", 8, 0)
    out = tmp_path / "out"
    # --source auto recognises the SYNTHETIC label: pages are never passed off as AI4VA
    assert main(["build", "--source", "auto", "--path", str(ann.parent), "--out", str(out), "--seed", "1",
                 "--no-contact-sheet"]) == 0
    report = json.loads((out / "build_report.json").read_text())
    # synthetic pages carry no speaker links: speaker_attribution has its own sources (issue 11)
    assert set(report["counts"]) == set(TASKS) - {"panel_understanding", "speaker_attribution"}
    assert all(sum(c.values()) > 0 for c in report["counts"].values())
    assert report["pages_per_split"] == {"train": 6, "validation": 1, "test": 1}
    assert set(report["tasks_without_samples"]) == {"panel_understanding", "speaker_attribution"}

    script = (
        "import json; from datasets import load_dataset\n"
        f"ds = load_dataset({str(out)!r}, 'depth_comparison')\n"
        "rows = [r for split in ds.values() for r in split]\n"
        "print(json.dumps([[r['bboxes'], r['width'], r['height'], list(r['image'].size), r['source'],"
        " r['page_id']] for r in rows]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(rows) == sum(report["counts"]["depth_comparison"].values())
    for boxes, w, h, size, source, page_id in rows:
        assert source == "synthetic" and page_id.startswith("synthetic/")
        assert size == [w, h]
        assert len(boxes) == 2  # the two marked entities
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_panel_understanding_with_a_scripted_vlm_client(tmp_path, monkeypatch):
    from PIL import Image

    from ai4va_fg_dataset.core import llm as vlm_client

    calls = []

    class ScriptedClient:
        def generate(self, prompt, images):
            calls.append((prompt, images))
            assert all(isinstance(im, Image.Image) for im in images)
            return ("Caption: two people talk at night.\nQuestion: How many people are in the panel?\n"
                    "Answer: Two.\nQuestion: Is it day or night?\nAnswer: Night.")

    made = []
    monkeypatch.setattr(vlm_client, "make_client",
                        lambda provider, model=None, base_url=None: made.append((provider, model, base_url))
                        or ScriptedClient())
    out = tmp_path / "out"
    assert main(["build", "--source", "acbf", "--path", str(DEMO / "craphound" / "craphound-1.1.acbf"),
                 "--out", str(out), "--tasks", "panel_understanding", "--pu-provider", "openai",
                 "--pu-model", "local-vlm", "--pu-base-url", "http://127.0.0.1:8000/v1", "--pu-questions", "2",
                 "--no-contact-sheet"]) == 0
    assert made == [("openai", "local-vlm", "http://127.0.0.1:8000/v1")]
    report = json.loads((out / "build_report.json").read_text())
    assert report["panel_understanding_client"] == "ScriptedClient"
    n = sum(report["counts"]["panel_understanding"].values())
    assert n == 2 * len(calls) > 0  # two questions per panel asked of the VLM
    import pyarrow.parquet as pq

    table = pq.read_table(min(out.glob("panel_understanding/*.parquet")),
                          columns=["question", "answer", "answer_type", "bboxes"])
    row = table.slice(0, 1).to_pylist()[0]
    assert row["answer_type"] == "open" and row["answer"] in ("Two.", "Night.")
    assert "panel" in row["question"].lower() and len(row["bboxes"]) == 1


def test_coco_mapping_file_plugs_in_another_schema(tmp_path, capsys):
    """A COCO comic set with other category names / attribute keys builds once --coco-mapping maps them."""
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    ann = make_synthetic_ai4va(tmp_path / "syn", 4, 0)
    data = json.loads(ann.read_text())
    data["info"] = {"description": "another comic dataset in COCO form"}
    for cat in data["categories"]:
        if cat["name"] == "character":
            cat["name"] = "figure"
    for a in data["annotations"]:
        attrs = a.get("attributes", {})
        if "Intradepth" in attrs:
            attrs["depth_rank"] = attrs.pop("Intradepth")
            attrs.pop("Interdepth", None)
    other = ann.with_name("other.json")
    other.write_text(json.dumps(data))
    args = ["build", "--source", "coco", "--path", str(other), "--tasks", "depth_comparison", "--no-contact-sheet"]

    assert main([*args, "--out", str(tmp_path / "strict")]) == 2
    assert "unknown category 'figure'" in capsys.readouterr().err

    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"character": ["figure"], "depth": ["depth_rank"]}))
    assert main([*args, "--out", str(tmp_path / "out"), "--coco-mapping", str(mapping)]) == 0
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert sum(report["counts"]["depth_comparison"].values()) > 0

    mapping.write_text(json.dumps({"charakter": ["figure"]}))
    assert main([*args, "--out", str(tmp_path / "bad"), "--coco-mapping", str(mapping)]) == 2
    assert "unknown CocoMapping fields ['charakter']" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0.8,0.2", "0.5,0.5,0.5", "a,b,c", "1.2,-0.1,-0.1"])
def test_split_ratios_are_checked(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(tmp_path / "o"), "--split-ratios", bad])
    assert exc.value.code == 2
    assert f"--split-ratios {bad!r}: give TRAIN,VALIDATION,TEST fractions summing to 1" in capsys.readouterr().err


def test_split_ratios_reach_the_build(tmp_path):
    out = tmp_path / "o"
    assert main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(out), "--split-ratios", "0.6,0.2,0.2",
                 "--no-contact-sheet"]) == 0
    report = json.loads((out / "build_report.json").read_text())
    # 13 pages x (0.6, 0.2, 0.2) = 7.8 / 2.6 / 2.6 -> largest remainder: 8 / 3 / 2
    assert report["pages_per_split"] == {"train": 8, "validation": 3, "test": 2}
