"""The task contract (issue 10): one declaration per task, everything else derived from it.

A toy task (declaration + generator class, both defined here) is registered and, without touching any
other file, generated from synthetic AI4VA-schema pages, fed or refused by the adapters, exported with
its dataset card, evaluated through the real ``lmms-eval`` CLI with the tiny Qwen2.5-VL, and rewarded by
the RARL reward functions. Also: the thesis Table 3.1 metadata of the seven paper tasks, the paper's
reference figures, the lmms-eval YAMLs against the declarations, and the derived task lists.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai4va_fg_dataset.adapters import ADAPTERS, AI4VAAdapter, MimiEuniceAdapter, load_source
from ai4va_fg_dataset.core.prompts import CHOICE_LETTERS
from ai4va_fg_dataset.errors import BadRecordLog
from ai4va_fg_dataset.marks import draw_marks
from ai4va_fg_dataset.schema import TASK_TITLES, TASKS, Sample
from ai4va_fg_dataset.tasks import base as task_base
from ai4va_fg_dataset.tasks import spec as task_spec
from ai4va_fg_dataset.tasks.base import TaskGenerator, default_generators, generate_samples, open_page
from ai4va_fg_dataset.tasks.spec import PAPER_TASKS, TaskSpec, get_task, register_task, unregister_task

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOY = "toy_panel_side"


# --------------------------------------------------------------------------------------- the toy task


class PanelSideGenerator(TaskGenerator):
    """Toy task: is the blue-boxed panel in the left or the right half of the page? Grounding: the panel."""

    name = TOY
    default_max_per_page = 2
    CHOICES = ("the left half", "the right half")

    def why_not(self, page):
        return None if page.panels else "no panel boxes"

    def generate(self, page, rng):
        image = open_page(page)
        panels = sorted(page.panels, key=lambda p: p.id)
        out = []
        for n, panel in enumerate(rng.sample(panels, min(self.max_per_page, len(panels)))):
            x1, _, x2, _ = panel.bbox
            right = (x1 + x2) / 2 >= page.width / 2
            marked = draw_marks(image, boxes=[panel.bbox])
            out.append(self.sample(
                page, n, image=marked, question="Is the panel marked with the blue box in the left or the right half of the page?",
                choices=list(self.CHOICES), answer=CHOICE_LETTERS[int(right)], answer_type="choice",
                width=marked.width, height=marked.height, bboxes=[list(panel.bbox)],
            ))
        return out


TOY_SPEC = TaskSpec(
    name=TOY,
    title="Toy Panel Side",
    short_title="ToySide",
    answer_type="choice",
    n_choices=2,
    grounding="the marked panel",
    needs=("panels",),
    generator=f"{__name__}:PanelSideGenerator",
    description="Toy task of the contract test: in which half of the page is the marked panel?",
    panel_scope="single",
    skill="recognition",
    rl_trainable=True,
    curriculum="action_depth",
)


@pytest.fixture(scope="module")
def toy():
    """The toy task registered for the module's tests, and removed (with its cached generator) after."""
    register_task(TOY_SPEC)
    try:
        yield TOY_SPEC
    finally:
        unregister_task(TOY)
        import ai4va_fg_dataset.tasks as tasks_pkg

        tasks_pkg.__dict__.get("GENERATORS", {}).pop(TOY, None)
        assert TOY not in TASKS


@pytest.fixture(scope="module")
def synthetic_pages(tmp_path_factory):
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    path = make_synthetic_ai4va(tmp_path_factory.mktemp("synthetic"), n_pages=2, seed=0)
    return load_source("synthetic", path, log=BadRecordLog())


@pytest.fixture(scope="module")
def toy_build(toy, synthetic_pages, tmp_path_factory):
    """The toy task generated from the synthetic pages (default generators: found through its spec) and
    exported with its card; every page in ``test``."""
    from ai4va_fg_dataset.build.export import write_dataset

    samples, skipped = generate_samples(synthetic_pages, seed=0, tasks=[TOY])
    out = tmp_path_factory.mktemp("toy_build") / "ai4va_fg"
    counts = write_dataset(samples, out, splits={p.page_id: "test" for p in synthetic_pages})
    return samples, skipped, counts, out


def test_toy_task_is_in_every_derived_list(toy):
    assert TASKS[-1] == TOY and TOY in TASKS and TASK_TITLES[TOY] == "Toy Panel Side"
    assert TOY in task_spec.closed_tasks() and TOY not in task_spec.closed_tasks(paper_only=True)
    assert TOY in task_spec.rarl_tasks() and TOY not in task_spec.rarl_tasks(paper_only=True)
    assert type(default_generators()[TOY]) is PanelSideGenerator
    gen = task_base.make_generator(TOY)
    assert (gen.panel_scope, gen.skill, gen.spec) == ("single", "recognition", TOY_SPEC)
    Sample(id="x", task=TOY, image=b"", question="q", answer="A", answer_type="choice", page_id="p", source="s",
           width=1, height=1, choices=["a", "b"])  # the row schema accepts it
    with pytest.raises(ValueError, match="already registered"):
        register_task(TOY_SPEC)


def test_toy_task_generated_and_exported_with_its_card(toy_build):
    from datasets import load_dataset

    samples, skipped, counts, out = toy_build
    assert samples and all(s.task == TOY for s in samples) and skipped == {TOY: {}}
    assert counts == {TOY: {"train": 0, "validation": 0, "test": len(samples)}}
    rows = load_dataset(str(out), TOY, split="test")
    assert sorted(rows["id"]) == sorted(s.id for s in samples)
    for row in rows:
        x1, _, x2, _ = row["bboxes"][0]
        assert row["answer"] == ("B" if (x1 + x2) / 2 >= row["width"] / 2 else "A")
        assert (row["panel_scope"], row["skill"]) == ("single", "recognition")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"| `{TOY}` | Toy Panel Side | 2 choices | single-panel recognition | the marked panel | {TOY_SPEC.description} |" in card
    assert f"config_name: {TOY}" in card


def test_adding_a_task_does_not_crash_the_adapters(toy, synthetic_pages):
    caps = AI4VAAdapter().capabilities(synthetic_pages)
    assert list(caps) == list(TASKS) and caps[TOY] is None
    for name, cls in ADAPTERS.items():
        assert set(cls.feeds) == set(TASKS), name
    # Mimi & Eunice fills no panels: the toy task is refused with the adapter's own explanation.
    assert MimiEuniceAdapter.feeds[TOY] == MimiEuniceAdapter.notes["panels"]
    # Pages without panels: the generator's own reason.
    bare = [dataclasses.replace(p, panels=()) for p in synthetic_pages]
    assert AI4VAAdapter().capabilities(bare)[TOY] == "no page: no panel boxes"


def test_toy_generator_carries_its_declaration_to_spawned_workers(toy):
    """A build worker (``spawn``: a fresh interpreter) unpickles the generator and knows the task."""
    import pickle

    code = ("import pickle, sys; g = pickle.loads(sys.stdin.buffer.read()); "
            "from ai4va_fg_dataset.schema import TASKS; print(g.name in TASKS, g.skill, g.spec.grounding)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(task_base.make_generator(TOY)),
                          capture_output=True, env=env, cwd=ROOT, check=False)
    assert proc.stdout.decode().split() == ["True", "recognition", "the", "marked", "panel"], proc.stderr.decode()[-2000:]


def test_toy_task_rewarded(toy_build):
    """The RARL rewards score a completion on an exported toy row: right answer + zoom on the GT panel."""
    from datasets import load_dataset

    from trl_rarl.environment import ZoomEnvironment
    from trl_rarl.rewards import accuracy_reward, format_reward, tool_iou_reward

    *_, out = toy_build
    row = load_dataset(str(out), TOY, split="test")[0]
    env = ZoomEnvironment()
    env.reset(**row)
    fw, fh = env.frame.resized(row["width"], row["height"])
    sx, sy = fw / row["width"], fh / row["height"]
    x1, y1, x2, y2 = row["bboxes"][0]
    box = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
    crop = env.image_zoom_in_tool(box)
    assert isinstance(crop, list), crop
    call = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}})
    wrong = "B" if row["answer"] == "A" else "A"
    completions = [
        [{"role": "assistant", "content": f"<think>zoom</think><tool_call>\n{call}\n</tool_call>"},
         {"role": "tool", "content": crop},
         {"role": "assistant", "content": f"<think>seen</think><answer>{a}</answer>"}]
        for a in (row["answer"], wrong)
    ]
    cols = {"answer": [row["answer"]] * 2, "answer_type": [row["answer_type"]] * 2, "choices": [row["choices"]] * 2}
    assert accuracy_reward(completions, **cols) == [1.0, 0.0]
    assert format_reward(completions) == [1.0, 1.0]
    iou = tool_iou_reward(completions, [env, env], **cols)
    assert iou[0] == pytest.approx(2 * iou[1]) and iou[1] > 0.9  # (1 + 1[correct]) * IoU, IoU ~ 1


def _tiny_model(base: Path) -> Path:
    made = ROOT / "build" / "tiny-qwen2.5-vl"  # `make tiny-model`
    if (made / "config.json").is_file():
        return made
    spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "recipes" / "make_tiny_model.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return Path(recipe.make_tiny_model(base / "tiny-qwen2.5-vl", seed=0))


@pytest.mark.slow
def test_toy_task_evaluated_through_lmms_eval(toy_build, tmp_path):
    """YAMLs generated from the declaration into a temporary include path; the real ``lmms-eval`` CLI
    runs the task with the tiny model and scores every row."""
    pytest.importorskip("lmms_eval")
    from lmms_eval_tasks.ai4va_fg import generate_yamls

    samples, _, _, data = toy_build
    include = tmp_path / "tasks"
    generate_yamls.write(include, [TOY], template_dir=generate_yamls.HERE, groups=False, dataset_path=str(data))
    assert sorted(p.name for p in include.glob("*.yaml")) == [f"ai4va_fg_{TOY}{m}.yaml" for m in ("", "_think", "_tool")]
    model = _tiny_model(tmp_path)
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(tmp_path / "hf_home"), "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
                "PYTHONPATH": os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
                "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    out = tmp_path / "results"
    cmd = [str(BIN / "lmms-eval"), "--model", "qwen2_5_vl",
           "--model_args", f"pretrained={model},device=cpu,device_map=cpu,min_pixels=3136,max_pixels=12544",
           "--tasks", f"ai4va_fg_{TOY}", "--include_path", str(include), "--batch_size", "1",
           "--output_path", str(out), "--log_samples"]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    took = time.monotonic() - start
    log = proc.stdout + proc.stderr
    files = sorted(out.rglob("*_results.json"))
    assert proc.returncode == 0 and files, log[-4000:]
    result = json.loads(files[-1].read_text())["results"][f"ai4va_fg_{TOY}"]
    assert 0.0 <= result["accuracy,none"] <= 1.0
    logged = [json.loads(line) for f in out.rglob("*_samples_*.jsonl") for line in f.read_text().splitlines() if line]
    assert len(logged) == len(samples)
    print(f"toy lmms-eval run: {took:.1f} s")  # about 30 s on an idle 2-core machine (the CLI's imports)


# ---------------------------------------------------------------------------------- the seven tasks

TABLE_3_1 = {  # thesis Table 3.1: (panel scope, skill) of each AI4VA-FG task
    "panel_understanding": ("single", "understanding"),
    "action_recognition": ("single", "recognition"),
    "depth_comparison": ("single", "recognition"),
    "dialog_reordering": ("multi", "understanding"),
    "panel_reordering": ("multi", "understanding"),
    "character_identification": ("multi", "recognition"),
    "character_counting": ("multi", "recognition"),
}

# method.md section 2 (answer type, options, #QA) and section 3 (random row, 7B RARL row, Table 3.3).
METHOD_TABLE = {
    "panel_understanding": ("open", None, 7902, None, 51.33, 58.67),
    "action_recognition": ("choice", 4, 1669, 25.00, 76.19, 55.78),
    "depth_comparison": ("choice", 2, 1125, 50.00, 57.28, 54.34),
    "dialog_reordering": ("choice", 2, 1364, 50.00, None, None),
    "panel_reordering": ("choice", 2, 1392, 50.00, None, None),
    "character_identification": ("choice", 4, 2368, 50.00, 71.32, 52.94),
    "character_counting": ("number", None, 444, None, 2.70, None),
}


def test_paper_tasks_in_order():
    assert PAPER_TASKS == tuple(TABLE_3_1) == tuple(TASKS[:7])


@pytest.mark.parametrize("task", list(TABLE_3_1))
def test_table_3_1_metadata(task, synthetic_pages):
    spec = get_task(task)
    assert (spec.panel_scope, spec.skill) == TABLE_3_1[task]
    gen = task_base.make_generator(task)
    assert (gen.panel_scope, gen.skill) == TABLE_3_1[task]  # generators read it from the spec
    assert "panel_scope" not in type(gen).__dict__ and "skill" not in type(gen).__dict__
    samples, _ = generate_samples(synthetic_pages, seed=0, tasks=[task])
    assert all(s.skill == TABLE_3_1[task][1] for s in samples)


@pytest.mark.parametrize("task", list(METHOD_TABLE))
def test_method_md_figures(task):
    spec = get_task(task)
    answer_type, n, qa, random_row, rarl, manual = METHOD_TABLE[task]
    assert (spec.answer_type, spec.n_choices, spec.paper_qa) == (answer_type, n, qa)
    assert (spec.paper_score("random"), spec.paper_score("7B RARL"), spec.paper_manual_zoom) == (random_row, rarl, manual)
    assert spec.manual_zoom == (manual is not None)
    assert spec.rl_trainable == (task not in ("dialog_reordering", "panel_reordering"))  # "RARL uses the other five"
    # chance is the paper's random row where it has one (Character Identification: 50% of 4 options)
    assert spec.chance == (random_row if random_row is not None else (100 / n if n else None))


def test_training_lists_follow_the_declarations():
    pytest.importorskip("trl")
    from trl_rarl.config import RARL_TASKS
    from trl_rarl.recipe_setup import CLOSED_TASKS

    assert CLOSED_TASKS == tuple(t for t in PAPER_TASKS if t != "panel_understanding")
    assert RARL_TASKS == ("panel_understanding", "action_recognition", "depth_comparison",
                          "character_identification", "character_counting")


@pytest.mark.parametrize("config", ["grpo_qwen2_5_vl_7b.yaml", "rarl_qwen2_5_vl_7b.yaml"])
def test_recipe_curricula_follow_the_declarations(config):
    """The sequential stages of the paper's recipes are the curriculum categories of their tasks, in
    order (method.md section 4), then one joint stage."""
    import yaml

    cfg = yaml.safe_load((ROOT / "recipes" / "configs" / config).read_text(encoding="utf-8"))
    tasks = cfg.get("train_tasks") or list(task_spec.closed_tasks(paper_only=True))
    stages = [s.rsplit(":", 1)[0] for s in cfg["curriculum_stages"]]
    assert stages == [",".join(g) for g in task_spec.curriculum_groups(tasks).values()] + ["all"]


def test_bad_declarations_name_the_bad_value():
    good = {"name": "x_task", "title": "X", "short_title": "X", "answer_type": "choice", "n_choices": 2,
            "generator": "m.n:C", "description": "d", "panel_scope": "single", "skill": "recognition"}
    TaskSpec(**good)
    for change, match in [({"name": "Bad Name"}, "Bad Name"), ({"answer_type": "essay"}, "essay"),
                          ({"n_choices": 1}, "n_choices"), ({"panel_scope": "page"}, "page"),
                          ({"skill": "vibes"}, "vibes"), ({"needs": ("panels.colour",)}, "panels.colour"),
                          ({"generator": "no_colon"}, "no_colon"), ({"rl_trainable": True}, "grounding"),
                          ({"paper_scores": (("GPT-5", 1.0),)}, "GPT-5")]:
        with pytest.raises(ValueError, match=match):
            TaskSpec(**{**good, **change})
    with pytest.raises(KeyError, match="nope"):
        get_task("nope")


def test_lmms_eval_yamls_match_the_declarations():
    """Every task and group YAML of lmms_eval_tasks/ai4va_fg is what the declarations generate
    (``python -m lmms_eval_tasks.ai4va_fg.generate_yamls`` rewrites them)."""
    from lmms_eval_tasks.ai4va_fg import generate_yamls

    installed = [t for t in TASKS if t != TOY]  # the toy task is registered while this module runs
    assert generate_yamls.check(tasks=installed) == []
    rendered = generate_yamls.render(installed)
    zoom = generate_yamls._content(rendered["ai4va_fg_zoom.yaml"])["task"]
    assert zoom == [f"ai4va_fg_{t}_zoom" for t in installed if get_task(t).manual_zoom]


def test_card_columns_are_the_schema_columns():
    from ai4va_fg_dataset import schema
    from ai4va_fg_dataset.build.dataset_card import columns_markdown

    names = [c[0] for c in schema.COLUMNS]
    assert names == list(schema.features())
    table = columns_markdown()
    assert all(f"| {n} |" in table for n in names)
    assert all(n in schema.__doc__ for n in names)  # the module docstring documents every column


def test_spec_imports_no_generator():
    code = ("import sys, ai4va_fg_dataset.tasks.spec as s; s.get_task('action_recognition');"
            "print(sorted(m for m in sys.modules if m.startswith('ai4va_fg_dataset')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert ast.literal_eval(out) == ["ai4va_fg_dataset", "ai4va_fg_dataset.tasks", "ai4va_fg_dataset.tasks.spec"]
