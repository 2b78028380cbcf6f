"""The paper's protocol where a comparison depends on it (issue 14).

* Manual zoom (paper Table 3.3) is a panel zoom: on a synthetic AI4VA-schema build, ``ai4va_fg_zoom``'s visual
  for an Action Recognition item is the crop of the panel that holds the marked character, not the character
  box; Character Identification gets its two panels in reading order; the entity crop stays as
  ``ai4va_fg_zoom_entity``; the report puts the paper's Table 3.3 numbers beside the panel variant.
* Item density is a build option: ``--max-per-page character_identification=8`` yields up to 8 items per page
  (more than the default cap), ``--density paper`` the ceil of Table 3.1's items per page; both recorded in
  ``build_report.json`` and the card.
* Vanilla GRPO runs RARL's curriculum (shared code): a 2-stage tiny run changes stage after step 1.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_rarl_trainer import tiny_model  # noqa: F401  (session fixture)
from test_recipe_configs_train import all_tasks_dataset  # noqa: F401  (session fixture)

N_PAGES = 6


@pytest.fixture(scope="module")
def synthetic_json(tmp_path_factory):
    """The SYNTHETIC AI4VA-schema page set, written by its command line (``python -m ai4va_fg_dataset.synthetic``)."""
    folder = tmp_path_factory.mktemp("synthetic_protocol")
    subprocess.run([sys.executable, "-m", "ai4va_fg_dataset.synthetic", "--out", str(folder), "--pages", str(N_PAGES),
                    "--seed", "0"], check=True, capture_output=True, cwd=REPO)
    (json_path,) = folder.glob("synthetic_*.json")
    return json_path


def _build(json_path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ai4va_fg_dataset.cli", "build", "--source", "synthetic", "--path", str(json_path),
           "--out", str(out), "--seed", "0", "--no-contact-sheet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def _rows(out: Path, task: str) -> list[dict]:
    import datasets

    ds = datasets.load_dataset("parquet", data_files=sorted(str(p) for p in (out / task).rglob("*.parquet")),
                               split="train")
    return list(ds)


@pytest.fixture(scope="module")
def zoom_build(synthetic_json, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoom_build") / "ds"
    res = _build(synthetic_json, out, "--tasks", "action_recognition,character_identification,depth_comparison")
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _annotated_panels(json_path: Path) -> dict[str, list[list[float]]]:
    """``{image file name: [panel boxes x1, y1, x2, y2]}`` straight from the COCO JSON (not the page model)."""
    data = json.loads(json_path.read_text())
    panel_cat = {c["id"] for c in data["categories"] if c["name"] == "panel"}
    names = {im["id"]: im["file_name"] for im in data["images"]}
    out: dict[str, list[list[float]]] = {}
    for a in data["annotations"]:
        if a["category_id"] in panel_cat:
            x, y, w, h = a["bbox"]
            out.setdefault(names[a["image_id"]], []).append([x, y, x + w, y + h])
    return out


def _inside(inner, outer, tol=1.0) -> bool:
    return (inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and inner[2] <= outer[2] + tol
            and inner[3] <= outer[3] + tol)


def _utils():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ai4va_fg_utils_protocol", REPO / "lmms_eval_tasks" / "ai4va_fg" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_panel_zoom_is_the_panel_of_the_marked_character(zoom_build, synthetic_json):
    from PIL import Image, ImageChops

    utils = _utils()
    panels = [b for boxes in _annotated_panels(synthetic_json).values() for b in boxes]
    rows = _rows(zoom_build, "action_recognition")
    assert rows
    for row in rows:
        (char,) = row["bboxes"]
        (panel,) = row["panel_bboxes"]
        assert _inside(char, panel)  # the panel holds the marked character ...
        assert any(all(abs(a - b) < 0.5 for a, b in zip(panel, p)) for p in panels)  # ... and is an annotated panel
        page = row["image"].convert("RGB")
        (crop,) = utils.ai4va_fg_panel_zoom_doc_to_visual(row)
        x1, y1, x2, y2 = (round(v) for v in panel)
        assert crop.size == (x2 - x1, y2 - y1)
        assert ImageChops.difference(crop, page.crop((x1, y1, x2, y2))).getbbox() is None
        (entity,) = utils.ai4va_fg_zoom_doc_to_visual(row)  # the entity-crop variant: the character only
        assert entity.size != crop.size and entity.size[0] * entity.size[1] < crop.size[0] * crop.size[1]
        assert isinstance(crop, Image.Image) and crop.mode == "RGB"


def test_panel_zoom_of_two_panel_tasks_is_one_crop_per_panel_in_reading_order(zoom_build):
    from ai4va_fg_dataset.reading_order import reading_order

    utils = _utils()
    rows = _rows(zoom_build, "character_identification")
    assert rows
    for row in rows:
        panels = row["panel_bboxes"]
        assert len(panels) == 2 and panels[0] != panels[1]  # the two characters sit in different panels
        assert reading_order(panels) == [0, 1]
        assert {i for b in row["bboxes"] for i, p in enumerate(panels) if _inside(b, p)} == {0, 1}
        crops = utils.ai4va_fg_panel_zoom_doc_to_visual(row)
        assert [c.size for c in crops] == [(round(p[2]) - round(p[0]), round(p[3]) - round(p[1])) for p in panels]
    for row in _rows(zoom_build, "depth_comparison"):  # a single-panel task: one panel, holding both entities
        (panel,) = row["panel_bboxes"]
        assert all(_inside(b, panel) for b in row["bboxes"])


def test_panel_zoom_without_panel_boxes_falls_back_to_the_entity_crop(caplog):
    from PIL import Image

    utils = _utils()
    page = Image.new("RGB", (200, 100), (255, 255, 255))
    doc = {"id": "x/p/0", "task": "action_recognition", "image": page, "bboxes": [[10, 10, 60, 70]], "panel_bboxes": []}
    with caplog.at_level("WARNING"):
        (crop,) = utils.ai4va_fg_panel_zoom_doc_to_visual(doc)
    assert crop.size == (50, 60) and "x/p/0" in caplog.text and "no panel_bboxes" in caplog.text
    with pytest.raises(ValueError, match="x/p/1"):
        utils.ai4va_fg_panel_zoom_doc_to_visual({**doc, "id": "x/p/1", "bboxes": []})


def test_zoom_groups_panel_default_and_entity_variant():
    folder = REPO / "lmms_eval_tasks" / "ai4va_fg"

    def load(name):  # the task YAMLs use lmms-eval's !function tag
        class Loader(yaml.SafeLoader):
            pass

        Loader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))
        return yaml.load((folder / name).read_text(), Loader=Loader)

    assert load("_zoom_yaml")["doc_to_visual"] == "!function utils.ai4va_fg_panel_zoom_doc_to_visual"
    assert load("_zoom_entity_yaml")["doc_to_visual"] == "!function utils.ai4va_fg_zoom_doc_to_visual"
    panel, entity = load("ai4va_fg_zoom.yaml"), load("ai4va_fg_zoom_entity.yaml")
    assert entity["group"] == "ai4va_fg_zoom_entity"
    assert entity["task"] == [t + "_entity" for t in panel["task"]]
    for task in panel["task"]:
        cfg = load(task + ".yaml")
        assert cfg["task"] == task and cfg["include"] == "_zoom_yaml" and "doc_to_visual" not in cfg
        ent = load(task + "_entity.yaml")
        assert ent["task"] == task + "_entity" and ent["include"] == "_zoom_entity_yaml"
        assert ent["dataset_name"] == cfg["dataset_name"]
    assert load("ai4va_fg_character_identification_zoom_entity.yaml")["doc_to_visual"] == (
        "!function utils.ai4va_fg_zoom_per_box_doc_to_visual")


def test_report_labels_both_zoom_variants_beside_the_paper():
    from lmms_eval_tasks import report

    assert report.parse_task_name("ai4va_fg_action_recognition_zoom") == ("action_recognition", "zoom")
    assert report.parse_task_name("ai4va_fg_action_recognition_zoom_entity") == ("action_recognition", "zoom_entity")
    rows = [report.Row("m", "zoom", {"action_recognition": {"accuracy": 0.5}}),
            report.Row("m", "zoom_entity", {"action_recognition": {"accuracy": 0.25}})]
    table = report.manual_zoom_table(rows)
    assert table[0] == ["model", "PanelU", "Action", "Depth", "CharID"]
    assert table[1] == ["paper Table 3.3: Qwen2.5-VL-7B (panel zoom)", "58.67", "55.78", "54.34", "52.94"]
    assert table[2] == ["m (panel zoom)", "-", "50.00", "-", "-"] and table[3] == ["m (entity zoom)", "-", "25.00", "-", "-"]
    assert "## Manual zoom (paper Table 3.3)" in report.render_markdown(rows)


# --------------------------------------------------------------------------------------------------------------
def test_max_per_page_option_raises_the_cap(synthetic_json, tmp_path):
    from ai4va_fg_dataset.tasks.character_identification import MAX_PER_PAGE

    per_page = {}
    for cap, extra in ((MAX_PER_PAGE, ()), (8, ("--max-per-page", "character_identification=8"))):
        out = tmp_path / f"cap{cap}"
        res = _build(synthetic_json, out, "--tasks", "character_identification", *extra)
        assert res.returncode == 0, res.stderr[-3000:]
        per_page[cap] = Counter(r["page_id"] for r in _rows(out, "character_identification"))
        report = json.loads((out / "build_report.json").read_text())
        assert report["density"] == "default" and report["max_per_page"] == {"character_identification": cap}
        assert f"character_identification {cap}" in (out / "README.md").read_text()
    assert max(per_page[MAX_PER_PAGE].values()) == MAX_PER_PAGE == 4
    assert max(per_page[8].values()) == 8  # up to 8 per page, reached where a page has 8 pairs
    assert all(per_page[8][p] >= n for p, n in per_page[MAX_PER_PAGE].items())


def test_density_paper_preset_and_bad_options(synthetic_json, tmp_path):
    from ai4va_fg_dataset.tasks.density import PAPER_ITEMS_PER_PAGE, PRESETS, resolve_max_per_page

    assert round(PAPER_ITEMS_PER_PAGE["character_identification"], 1) == 8.4
    assert PRESETS["paper"] == {t: math.ceil(v) for t, v in PAPER_ITEMS_PER_PAGE.items() if t != "panel_understanding"}
    assert resolve_max_per_page("paper", {"panel_reordering": 7})["panel_reordering"] == 7
    out = tmp_path / "paper"
    res = _build(synthetic_json, out, "--tasks", "character_identification,panel_reordering", "--density", "paper")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "build_report.json").read_text())
    assert report["density"] == "paper"
    assert report["max_per_page"] == {"panel_reordering": 5, "character_identification": 9}
    for bad, message in (("character_identification", "expected TASK=N"),
                         ("character_identification=0", "N must be >= 1"),
                         ("panel_understanding=3", "no per-page cap"),
                         ("nope=3", "'nope' has no per-page cap")):
        res = _build(synthetic_json, tmp_path / "bad", "--max-per-page", bad)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_grpo_runs_the_shared_curriculum_and_changes_stage(tiny_model, all_tasks_dataset, tmp_path, monkeypatch):  # noqa: F811
    """``recipes/grpo.py`` with the shipped GRPO config, two 1-step stages: step 0 trains on stage 0's task only,
    step 1 on stage 1's; the stage is logged, and the sampler is RARL's (``trl_rarl.schedule``)."""
    from test_rarl_recipes import _recipe
    from test_recipe_configs_train import CONFIG_RUNS, OUT, TINY, _flags
    from trl import GRPOTrainer

    from trl_rarl.schedule import CurriculumSampler, ScheduleCallback

    seen: list[tuple[int, list[str]]] = []
    original = GRPOTrainer._generate_and_score_completions

    def record(self, inputs):
        seen.append((self.state.global_step, sorted({x["task"] for x in inputs})))
        return original(self, inputs)

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", record)
    _, overrides = CONFIG_RUNS["grpo_qwen2_5_vl_7b.yaml"]
    argv = ["--config", str(REPO / "recipes" / "configs" / "grpo_qwen2_5_vl_7b.yaml"), "--dataset_path", all_tasks_dataset,
            *_flags({**overrides, "max_steps": 2, "report_to": "none", "save_strategy": "no"},
                    {TINY: tiny_model, OUT: str(tmp_path / "out")}),
            "--curriculum_stages", "action_recognition:1", "dialog_reordering:1"]
    trainer = _recipe("grpo").main(argv)
    assert trainer.state.global_step == 2
    assert isinstance(trainer._get_train_sampler(), CurriculumSampler)
    assert any(isinstance(c, ScheduleCallback) for c in trainer.callback_handler.callbacks)
    assert seen == [(0, ["action_recognition"]), (1, ["dialog_reordering"])]
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["schedule/stage"] for h in logs] == [0.0, 1.0]
