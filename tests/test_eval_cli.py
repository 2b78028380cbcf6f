"""End to end through the real ``lmms-eval`` CLI (subprocess), offline, with the tiny Qwen2.5-VL on a
small built AI4VA-FG dataset: every task in direct, think and manual-zoom mode (``--model
qwen2_5_vl`` through ``--include_path`` from ``python -m lmms_eval_tasks.path --dataset``), and
every task in agentic zoom mode (``--model ai4va_zoom`` registered through the ``lmms_eval.models``
entry point, run from an lmms-eval ``--config`` file, the tiny model scripted to call the zoom tool,
Panel Understanding judged by a local HTTP server). Assertions read the results and sample files,
never the exit code alone. Then ``ai4va-fg report`` renders the table and chart from those runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TASKS = ["panel_understanding", "action_recognition", "depth_comparison", "dialog_reordering",
         "panel_reordering", "character_identification", "character_counting"]
ZOOM_TASKS = ["panel_understanding", "action_recognition", "depth_comparison", "character_identification"]
PAGE = (320, 240)
# GT boxes of the test samples (page pixels).
ACTION_BOX = [40.0, 40.0, 80.0, 90.0]
DEPTH_BOXES = [[20.0, 20.0, 60.0, 60.0], [100.0, 30.0, 140.0, 100.0]]
CHARID_BOXES = [[20.0, 20.0, 60.0, 60.0], [180.0, 20.0, 240.0, 100.0]]

# Scripted turns for the tiny model (it never calls a tool by itself), keyed by the number of images in
# the prompt. The page 320x240 is seen by the tiny model as 112x84 (Qwen2.5-VL smart_resize with
# max_pixels=12544), so the first call [14, 14, 28, 31.5] is ACTION_BOX and the second [63, 7, 84, 35]
# is CHARID_BOXES[1] in page pixels.
SITECUSTOMIZE = r'''
import os
if os.environ.get("AI4VA_FG_TEST_SCRIPT_ZOOM"):
    import torch
    from transformers import AutoTokenizer
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as m

    _real = m.Qwen2_5_VLForConditionalGeneration.generate
    SCRIPT = {
        1: '<think>look closer</think><tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [14, 14, 28, 31.5]}}\n</tool_call>',
        2: '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [63, 7, 84, 35], "label": "second"}}\n</tool_call>',
        3: '<think>done</think><answer>B</answer>',
    }
    _tok = {}

    def generate(self, *args, **kwargs):
        # The real forward pass runs on the whole multi-image prompt; the scripted text replaces its tokens.
        out = _real(self, *args, **{**kwargs, "max_new_tokens": 1})
        ids = kwargs["input_ids"]
        n_images = int((ids[0] == self.config.vision_start_token_id).sum())
        text = SCRIPT.get(n_images)
        if text is None:
            return out
        if "tok" not in _tok:
            _tok["tok"] = AutoTokenizer.from_pretrained(self.config._name_or_path)
        new = torch.tensor([_tok["tok"](text, add_special_tokens=False).input_ids], dtype=ids.dtype)
        return torch.cat([ids, new], dim=1)

    m.Qwen2_5_VLForConditionalGeneration.generate = generate
'''


def _page(shift: int):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", PAGE, (250, 245, 235))
    d = ImageDraw.Draw(im)
    for box in ((10, 10, 150, 110), (170, 10, 310, 110), (10, 130, 310, 230)):
        d.rectangle(box, outline=(0, 0, 0), width=2)
    d.ellipse((40 + shift, 40, 80 + shift, 90), fill=(200, 60, 60))
    return im


def _samples():
    from ai4va_fg_dataset.schema import Sample

    out = []
    for t in TASKS:
        for i in range(2):
            kw = {"id": f"{t}/p{i}/{i}", "task": t, "image": _page(7 * i), "page_id": f"p{i}", "source": "unit",
                      "width": PAGE[0], "height": PAGE[1]}
            if t == "panel_understanding":
                s = Sample(question="In the first panel of the top row, what colour is the ball?", answer="red",
                           answer_type="open", bboxes=[[10, 10, 150, 110]], **kw)
            elif t == "character_counting":
                s = Sample(question="How many times does the red character appear on the page?", answer=str(i + 1),
                           answer_type="number", bboxes=[ACTION_BOX], panel_scope="multi", **kw)
            elif t in ("dialog_reordering", "panel_reordering"):
                s = Sample(question="Which order is correct?", choices=["1, 2, 3", "2, 1, 3"], answer="AB"[i],
                           answer_type="choice", **kw)
            elif t == "action_recognition":
                s = Sample(question="What is the marked character doing?",
                           choices=["running", "sitting", "jumping", "sleeping"], answer="B", answer_type="choice",
                           bboxes=[ACTION_BOX], **kw)
            elif t == "depth_comparison":
                s = Sample(question="Which marked entity is closer to the viewer?",
                           choices=["the left one", "the right one"], answer="A", answer_type="choice",
                           bboxes=DEPTH_BOXES, **kw)
            else:
                s = Sample(question="Are the two marked characters the same character?", choices=["yes", "no"],
                           answer="A", answer_type="choice", bboxes=CHARID_BOXES, panel_scope="multi", **kw)
            out.append(s)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny model, built dataset, plugin dir (entry point + scripted generation), hermetic env vars."""
    from ai4va_fg_dataset.export import write_dataset

    base = tmp_path_factory.mktemp("eval_cli")
    spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "recipes" / "make_tiny_model.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    model = recipe.make_tiny_model(base / "tiny-qwen2.5-vl", seed=0)
    samples = _samples()
    data = base / "ai4va_fg"
    write_dataset(samples, data, splits={s.page_id: "test" for s in samples})

    plugin = base / "plugin"
    plugin.mkdir()
    (plugin / "sitecustomize.py").write_text(SITECUSTOMIZE)
    registered = any(ep.name == "ai4va_zoom" for ep in entry_points(group="lmms_eval.models"))
    if not registered:  # until pyproject.toml declares it: the same entry point, from a dist-info on the path
        dist = plugin / "ai4va_fg_eval_plugin-0.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ai4va-fg-eval-plugin\nVersion: 0.0\n")
        (dist / "entry_points.txt").write_text("[lmms_eval.models]\nai4va_zoom = lmms_eval_tasks.models:MANIFESTS\n")
    environ = dict(os.environ)
    environ.update({
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(base / "hf_home"), "HF_DATASETS_CACHE": str(base / "hf_datasets"),
        "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)] + ([environ["PYTHONPATH"]] if environ.get("PYTHONPATH") else [])),
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
    })
    for key in ("OPENAI_API_KEY", "AI4VA_FG_JUDGE_API_KEY", "LMMS_EVAL_PLUGINS"):
        environ.pop(key, None)
    return {"base": base, "model": model, "data": data, "env": environ}


def _run(cmd, environ, log: Path):
    proc = subprocess.run(cmd, check=False, env=environ, capture_output=True, text=True, timeout=540, cwd=log.parent)
    log.write_text(proc.stdout + "\n" + proc.stderr)
    return proc


def _results(out_dir: Path, log: Path) -> tuple[dict, dict[str, list[dict]]]:
    files = sorted(out_dir.rglob("*_results.json"))
    assert files, f"no results file under {out_dir}; log tail:\n{log.read_text()[-3000:]}"
    results = json.loads(files[-1].read_text())
    samples = {}
    for f in out_dir.rglob("*_samples_*.jsonl"):
        task = f.stem.split("_samples_", 1)[1]
        samples[task] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return results, samples


@pytest.fixture(scope="module")
def direct_run(env):
    """Direct, think and manual-zoom groups with lmms-eval's own qwen2_5_vl backend."""
    base = env["base"]
    include = subprocess.run([sys.executable, "-m", "lmms_eval_tasks.path", "--dataset", str(env["data"]),
                              "--out", str(base / "overlay")], env=env["env"], capture_output=True, text=True,
                             check=True).stdout.strip()
    out = base / "out_direct"
    log = base / "direct.log"
    cmd = [str(BIN / "lmms-eval"), "--model", "qwen2_5_vl",
           "--model_args", f"pretrained={env['model']},device=cpu,device_map=cpu,min_pixels=3136,max_pixels=12544",
           "--include_path", include, "--tasks", "ai4va_fg,ai4va_fg_think,ai4va_fg_zoom",
           "--gen_kwargs", "max_new_tokens=6", "--output_path", str(out), "--log_samples",
           "--process_docs_parallel", "1"]
    _run(cmd, env["env"], log)
    return (*_results(out, log), out)


@pytest.fixture(scope="module")
def judge_server():
    sys.path.insert(0, str(Path(__file__).parent))
    from test_eval_judge import JudgeServer

    server = JudgeServer(default=("ok", '{"correct": true}'))
    yield server
    server.close()


@pytest.fixture(scope="module")
def tool_run(env, judge_server):
    """Agentic zoom group with the ai4va_zoom agent, from an lmms-eval --config file."""
    base = env["base"]
    out = base / "out_tool"
    log = base / "tool.log"
    config = {
        "model": "ai4va_zoom",
        "model_args": f"pretrained={env['model']},backend=hf,max_turns=4",
        "tasks": "ai4va_fg_tool",
        "include_path": str(ROOT / "lmms_eval_tasks" / "ai4va_fg"),
        "gen_kwargs": "max_new_tokens=6",
        "output_path": str(out),
        "log_samples": True,
        "env": {"AI4VA_FG_JUDGE_BASE_URL": judge_server.url, "AI4VA_FG_JUDGE_API_KEY": "sk-local-secret",
                "AI4VA_FG_JUDGE_MODEL": "local-judge", "AI4VA_FG_JUDGE_CACHE": str(base / "judge_cache")},
    }
    cfg = base / "tool_eval.yaml"
    cfg.write_text(yaml.safe_dump(config))
    # The task folder's default dataset_path (build/ai4va_fg) is relative to the working directory.
    (base / "build").mkdir(exist_ok=True)
    link = base / "build" / "ai4va_fg"
    if not link.exists():
        link.symlink_to(env["data"], target_is_directory=True)
    environ = {**env["env"], "AI4VA_FG_TEST_SCRIPT_ZOOM": "1"}
    _run([str(BIN / "lmms-eval"), "--config", str(cfg)], environ, log)
    return (*_results(out, log), out, log)


def test_direct_think_zoom_all_tasks(direct_run):
    results, samples, _ = direct_run
    names = [f"ai4va_fg_{t}" for t in TASKS] + [f"ai4va_fg_{t}_think" for t in TASKS] + \
        [f"ai4va_fg_{t}_zoom" for t in ZOOM_TASKS]
    for name in names:
        assert name in results["results"], name
        r = results["results"][name]
        rows = samples[name]
        assert len(rows) == 2
        # The reported accuracy and parse-failure rate are the means of the per-sample scores.
        assert r["accuracy,none"] == pytest.approx(sum(s["accuracy"] for s in rows) / 2)
        assert r["parse_failure,none"] == pytest.approx(sum(s["parse_failure"] for s in rows) / 2)
        # A random tiny model writes no readable answer: scored 0 and counted as a parse failure.
        for s in rows:
            if s["parse_failure"] == 1.0:
                assert s["accuracy"] == 0.0
    assert "ai4va_fg_character_counting" in results["results"] and \
        "mae,none" in results["results"]["ai4va_fg_character_counting"]
    assert "judge_failure,none" in results["results"]["ai4va_fg_panel_understanding"]
    # Prompt modes: the wording of ai4va_fg_dataset.prompts.
    from ai4va_fg_dataset.prompts import DIRECT_SUFFIX, THINK_SUFFIX

    assert samples["ai4va_fg_action_recognition"][0]["input"].endswith(DIRECT_SUFFIX)
    assert THINK_SUFFIX in samples["ai4va_fg_action_recognition_think"][0]["input"]
    assert "Options:\nA. running\nB. sitting" in samples["ai4va_fg_action_recognition"][0]["input"]
    # Groups report the macro average of their tasks' accuracy.
    for group, suffix, tasks in (("ai4va_fg", "", TASKS), ("ai4va_fg_think", "_think", TASKS),
                                 ("ai4va_fg_zoom", "_zoom", ZOOM_TASKS)):
        accs = [results["results"][f"ai4va_fg_{t}{suffix}"]["accuracy,none"] for t in tasks]
        assert results["groups"][group]["accuracy,none"] == pytest.approx(sum(accs) / len(accs))


def test_agentic_zoom_all_tasks(tool_run, judge_server):
    results, samples, _, log = tool_run
    for t in TASKS:
        assert f"ai4va_fg_{t}_tool" in results["results"], f"{t}: {log.read_text()[-2000:]}"
    res = results["results"]
    # Every sample: two zoom calls executed (scripted), then the answer B.
    for t in TASKS:
        r = res[f"ai4va_fg_{t}_tool"]
        assert r["tool_calls,none"] == 2.0
        for s in samples[f"ai4va_fg_{t}_tool"]:
            traj = json.loads(s["resps"][0] if isinstance(s["resps"], list) else s["resps"])
            assert traj["stop"] == "answer" and len(traj["turns"]) == 3
            assert traj["crops"] == [ACTION_BOX, CHARID_BOXES[1]]  # mapped back from the 112x84 frame
    # Hand-computed IoUs (Hungarian matching, unmatched crops score 0):
    act = res["ai4va_fg_action_recognition_tool"]
    assert act["accuracy,none"] == 1.0 and act["parse_failure,none"] == 0.0
    assert act["zoom_iou_first,none"] == pytest.approx(1.0) and act["zoom_iou_second,none"] == 0.0
    assert act["zoom_iou,none"] == pytest.approx(0.5)
    cid = res["ai4va_fg_character_identification_tool"]
    # first crop [40,40,80,90] vs [20,20,60,60]: 400 / (2000 + 1600 - 400) = 0.125; second crop exact.
    assert cid["zoom_iou_first,none"] == pytest.approx(0.125) and cid["zoom_iou_second,none"] == pytest.approx(1.0)
    assert cid["accuracy,none"] == 0.0  # answered B, GT A
    dep = res["ai4va_fg_depth_comparison_tool"]
    # [40,40,80,90] vs [20,20,60,60] = 0.125 or vs [100,30,140,100] = 0; [180,20,240,100] vs both = 0.
    assert dep["zoom_iou_first,none"] == pytest.approx(0.125) and dep["zoom_iou_second,none"] == 0.0
    assert res["ai4va_fg_dialog_reordering_tool"]["zoom_iou,none"] is None  # no GT regions
    assert res["ai4va_fg_dialog_reordering_tool"]["accuracy,none"] == 0.5  # B right on one of two
    count = res["ai4va_fg_character_counting_tool"]
    assert count["parse_failure,none"] == 1.0 and count["accuracy,none"] == 0.0  # "B" is not a count
    # Panel Understanding: the answer went to the local judge, which said correct; verdicts cached.
    pu = res["ai4va_fg_panel_understanding_tool"]
    assert pu["accuracy,none"] == 1.0 and pu["judge_failure,none"] == 0.0
    assert judge_server.requests and all(r["body"]["model"] == "local-judge" for r in judge_server.requests)
    assert "Model answer: B" in judge_server.requests[0]["body"]["messages"][0]["content"]
    cache = list((tool_run[2].parent / "judge_cache").rglob("*.json"))
    assert len(cache) == 1
    assert "sk-local-secret" not in log.read_text()
    assert results["groups"]["ai4va_fg_tool"]["accuracy,none"] == pytest.approx(
        sum(res[f"ai4va_fg_{t}_tool"]["accuracy,none"] for t in TASKS) / len(TASKS))


def test_report_from_real_runs(direct_run, tool_run, env):
    out = env["base"] / "report"
    proc = subprocess.run([str(BIN / "ai4va-fg"), "report", str(direct_run[2]), str(tool_run[2]), "--out", str(out)],
                          check=False, env=env["env"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (out / "ai4va_fg_results.md").read_text()
    for label in ("| tiny-qwen2.5-vl |", "| tiny-qwen2.5-vl (think) |", "| tiny-qwen2.5-vl (zoom) |",
                  "| tiny-qwen2.5-vl (tool) |", "| random | - | 25.00 | 50.00 |"):
        assert label in md
    assert "| tiny-qwen2.5-vl | CharID | 2.00 | 0.562 | 0.125 | 1.000 |" in md
    assert (out / "ai4va_fg_accuracy.png").stat().st_size > 1000
    assert len((out / "ai4va_fg_results.csv").read_text().splitlines()) == 6  # header, random, 4 rows


def test_manual_zoom_crops(env):
    """The manual-zoom visuals are the GT region crops (union; one per box for Character Identification)."""
    import datasets

    spec = importlib.util.spec_from_file_location("ai4va_utils", ROOT / "lmms_eval_tasks" / "ai4va_fg" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    depth = datasets.load_dataset(str(env["data"]), "depth_comparison", split="test",
                                  cache_dir=str(env["base"] / "hf_datasets"))[0]
    (crop,) = utils.ai4va_fg_zoom_doc_to_visual(depth)
    assert crop.size == (120, 80)  # union of [20,20,60,60] and [100,30,140,100]
    page = depth["image"].convert("RGB")
    assert crop.tobytes() == page.crop((20, 20, 140, 100)).tobytes()
    charid = datasets.load_dataset(str(env["data"]), "character_identification", split="test",
                                   cache_dir=str(env["base"] / "hf_datasets"))[0]
    assert [c.size for c in utils.ai4va_fg_zoom_per_box_doc_to_visual(charid)] == [(40, 40), (60, 80)]
    dialog = datasets.load_dataset(str(env["data"]), "dialog_reordering", split="test",
                                   cache_dir=str(env["base"] / "hf_datasets"))[0]
    with pytest.raises(ValueError, match="no GT region"):
        utils.ai4va_fg_zoom_doc_to_visual(dialog)
