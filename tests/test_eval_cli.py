"""End to end through the real CLIs (subprocesses), offline, with the tiny Qwen2.5-VL on a small built
AI4VA-FG dataset.

* Every recipe in recipes/eval/ runs as written but for the OVERRIDES table below (tiny model, CPU, HF
  backend for vLLM, a local fake OpenAI / Gemini server for the API models and the judge): through
  ``ai4va-fg eval`` (which must exit 0), one of them through plain ``lmms-eval --config`` from a folder laid
  out like the repository root. A recipe the table does not name fails the suite.
* The HF recipe covers every task in direct, think and manual-zoom mode; the zoom-agent recipe every task
  in agentic zoom mode (``--model ai4va_zoom`` registered through the ``lmms_eval.models`` entry point, the
  tiny model scripted to call the zoom tool, Panel Understanding judged by the fake server).
* ``ai4va-fg eval`` exits 2 with one line on a missing build, a task the build lacks or an unknown task,
  and 1 with one line per failure when lmms-eval fails inside (where plain lmms-eval exits 0).

Assertions read the results and sample files, never the exit code alone. Then ``ai4va-fg report``
renders the table and chart from those runs."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml
from local_http import LocalServer, read_body, send_json

from ai4va_fg_dataset.tasks.spec import task_names

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TASKS = list(task_names())  # every declared task gets rows below (a new task must add its branch)
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
            elif t == "speaker_attribution":
                s = Sample(question="Who says the line in the marked balloon?", choices=["Mimi", "Eunice"],
                           answer="AB"[i], answer_type="choice", bboxes=[[170, 10, 230, 40], ACTION_BOX], **kw)
            elif t == "character_identification":
                s = Sample(question="Are the two marked characters the same character?", choices=["yes", "no"],
                           answer="A", answer_type="choice", bboxes=CHARID_BOXES, panel_scope="multi", **kw)
            else:
                raise AssertionError(f"no test rows for task {t!r}: add a branch to _samples()")
            out.append(s)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny model, built dataset (and a partial one), plugin dir (entry point + scripted generation),
    hermetic env vars (HOME too: ``ai4va-fg eval`` writes its task overlay under ~/.cache)."""
    from ai4va_fg_dataset.build.export import write_dataset

    base = tmp_path_factory.mktemp("eval_cli")
    spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "recipes" / "make_tiny_model.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    model = recipe.make_tiny_model(base / "tiny-qwen2.5-vl", seed=0)
    samples = _samples()
    data = base / "ai4va_fg"
    write_dataset(samples, data, splits={s.page_id: "test" for s in samples})
    # A partial build: only the reordering tasks (real sources without character annotations).
    reordering = [s for s in samples if s.task in ("dialog_reordering", "panel_reordering")]
    partial = base / "ai4va_fg_partial"
    write_dataset(reordering, partial, splits={s.page_id: "test" for s in reordering})

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
        "HF_HOME": str(base / "hf_home"), "HF_DATASETS_CACHE": str(base / "hf_datasets"), "HOME": str(base / "home"),
        "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)] + ([environ["PYTHONPATH"]] if environ.get("PYTHONPATH") else [])),
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
    })
    for key in ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL", "GOOGLE_API_KEY", "GEMINI_API_KEY",
                "GOOGLE_GEMINI_BASE_URL", "AI4VA_FG_JUDGE_API_KEY", "AI4VA_FG_JUDGE_BASE_URL", "LMMS_EVAL_PLUGINS"):
        environ.pop(key, None)
    return {"base": base, "model": model, "data": data, "partial": partial, "env": environ}


def _run(cmd, environ, log: Path, cwd: Path | None = None):
    proc = subprocess.run(cmd, check=False, env=environ, capture_output=True, text=True, timeout=540,
                          cwd=cwd or log.parent)
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


class FakeLLMServer(LocalServer):
    """A local stand-in for the OpenAI chat API (``/v1/chat/completions``) and the Gemini API
    (``/v1beta/models/M:generateContent``). Judge prompts (they start "You are grading") get
    ``verdict``; every other request gets ``answer``. Requests are recorded."""

    def __init__(self, answer="<answer>A</answer>", verdict='{"correct": true}'):
        self.answer, self.verdict = answer, verdict
        self.requests: list[dict] = []
        super().__init__()

    def handle(self, req):
        body = json.loads(read_body(req) or b"{}")
        gemini = ":generateContent" in req.path
        if gemini:
            texts = [p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])]
        else:
            texts = []
            for m in body.get("messages", []):
                c = m.get("content")
                texts += [c] if isinstance(c, str) else [x.get("text", "") for x in c or [] if isinstance(x, dict)]
        judge = any(t.startswith("You are grading") for t in texts)
        self.requests.append({"path": req.path, "model": body.get("model") or req.path.rsplit("/", 1)[-1].split(":")[0],
                              "judge": judge, "texts": texts})
        text = self.verdict if judge else self.answer
        if gemini:
            payload = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}}
        else:
            payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
        send_json(req, 200, payload)


# ---------------------------------------------------------------------------------------------------
# Every recipes/eval/*.yaml runs through the real CLI, as written, except for THIS table: what a CPU-only,
# offline test has to change, and why. Nothing else is touched: tasks, include_path, batch_size,
# output_path, log_samples, the env block (judge provider, model, cache) and every other model arg run as
# the recipe has them. A recipe missing here fails test_override_table_names_every_recipe.
#   model       replaces the recipe's backend;
#   model_args  "tiny": the whole string becomes TINY_QWEN; a dict replaces / adds those keys, keeps the rest;
#   limit       samples per task (None: all, the small build has 2 per task);
#   env         extra process env ("{url}": the fake LLM server);
#   why         the reason.
# Every run also gets COMMON_ARGS, fake API keys (OPENAI_API_KEY / GOOGLE_API_KEY), its own empty working
# directory (the recipes' output_path and judge cache are relative to it) and the judge sent to the fake
# server (AI4VA_FG_JUDGE_BASE_URL; the recipes set none). RAW_LMMS_EVAL runs with plain `lmms-eval --config`
# from a folder laid out like the repository root (recipes/eval/README.md); the others with
# `ai4va-fg eval --dataset DATA --config recipes/eval/NAME`.
# ---------------------------------------------------------------------------------------------------
TINY_QWEN = "pretrained={model},device=cpu,device_map=cpu,min_pixels=3136,max_pixels=12544"
COMMON_ARGS = ["--gen_kwargs", "max_new_tokens=4", "--process_docs_parallel", "1"]  # short answers; no doc workers
VLLM_WHY = "vLLM is CUDA-only (never installed by CI): lmms-eval's HF Qwen2.5-VL backend with the tiny model"
OVERRIDES = {
    "qwen2_5_vl_7b_vllm.yaml": {"model": "qwen2_5_vl", "model_args": "tiny", "limit": 1, "why": VLLM_WHY},
    "internvl3_8b_vllm.yaml": {"model": "qwen2_5_vl", "model_args": "tiny", "limit": 1, "why": VLLM_WHY},
    "qwen2_5_vl_7b_hf.yaml": {
        "model_args": {"pretrained": "{model}", "device": "cpu", "device_map": "cpu", "min_pixels": "3136",
                       "max_pixels": "12544"},
        "limit": None,
        "why": "tiny model on CPU (attn_implementation as written); all samples: test_direct_think_zoom_all_tasks",
    },
    "zoom_agent_vllm.yaml": {
        "model_args": {"pretrained": "{model}", "backend": "hf"},
        "limit": None,
        "env": {"AI4VA_FG_TEST_SCRIPT_ZOOM": "1"},
        "why": "vLLM is CUDA-only: the agent's own HF backend (same loop) with the tiny model, scripted to zoom "
               "twice (SITECUSTOMIZE); all samples: test_agentic_zoom_all_tasks",
    },
    "gpt4o.yaml": {
        "limit": 1,
        "env": {"OPENAI_API_BASE": "{url}/v1"},
        "why": "lmms-eval's openai model, model_args as written, sent to the fake server (it reads OPENAI_API_BASE)",
    },
    "gemini.yaml": {
        "limit": 1,
        "env": {"GOOGLE_GEMINI_BASE_URL": "{url}/", "AI4VA_FG_JUDGE_BASE_URL": "{url}"},
        "why": "lmms-eval's gemini model has no base-URL arg, but google-genai reads GOOGLE_GEMINI_BASE_URL: the "
               "real gemini backend, model_args as written, against the fake server (judge: Gemini API too)",
    },
}
RAW_LMMS_EVAL = "qwen2_5_vl_7b_vllm.yaml"
RECIPES = sorted(p.name for p in (ROOT / "recipes" / "eval").glob("*.yaml"))


def _override_model_args(recipe_args: str, override, model: Path) -> str:
    if override is None:
        return recipe_args
    if override == "tiny":
        return TINY_QWEN.format(model=model)
    args = dict(kv.split("=", 1) for kv in recipe_args.split(",") if kv)
    args.update({k: v.format(model=model) for k, v in override.items()})
    return ",".join(f"{k}={v}" for k, v in args.items())


def _run_recipe(env, name: str) -> dict:
    """Run recipes/eval/NAME with its OVERRIDES; returns the run's results, samples, folders, log, server."""
    over = OVERRIDES[name]
    recipe = yaml.safe_load((ROOT / "recipes" / "eval" / name).read_text())
    server = FakeLLMServer(answer="<answer>A</answer>")
    cwd = env["base"] / "runs" / Path(name).stem
    cwd.mkdir(parents=True)
    raw = name == RAW_LMMS_EVAL
    args = ["--config", f"recipes/eval/{name}" if raw else str(ROOT / "recipes" / "eval" / name), *COMMON_ARGS]
    if "model" in over:
        args += ["--model", over["model"]]
    if "model_args" in over:
        args += ["--model_args", _override_model_args(recipe["model_args"], over["model_args"], env["model"])]
    if over.get("limit") is not None:
        args += ["--limit", str(over["limit"])]
    environ = {**env["env"], "OPENAI_API_KEY": "sk-local-secret", "GOOGLE_API_KEY": "g-local-secret",
               "AI4VA_FG_JUDGE_BASE_URL": f"{server.url}/v1"}
    environ.update({k: v.format(url=server.url) for k, v in over.get("env", {}).items()})
    if raw:  # as recipes/eval/README.md: from the repository root, the build in build/ai4va_fg
        for folder in ("recipes", "lmms_eval_tasks"):
            (cwd / folder).symlink_to(ROOT / folder, target_is_directory=True)
        (cwd / "build").mkdir()
        (cwd / "build" / "ai4va_fg").symlink_to(env["data"], target_is_directory=True)
        cmd = [str(BIN / "lmms-eval"), *args]
    else:
        cmd = [str(BIN / "ai4va-fg"), "eval", "--dataset", str(env["data"]), *args]
    log = cwd.parent / f"{cwd.name}.log"
    proc = _run(cmd, environ, log, cwd=cwd)
    server.close()
    out = cwd / recipe["output_path"]
    results, samples = _results(out, log)
    return {"recipe": recipe, "proc": proc, "log": log, "cwd": cwd, "out": out, "results": results,
            "samples": samples, "server": server, "model": over.get("model", recipe["model"])}


@pytest.fixture(scope="module")
def recipe_run(env):
    """``recipe_run(name)``: the run of recipes/eval/NAME (made once per module)."""
    runs: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in runs:
            runs[name] = _run_recipe(env, name)
        return runs[name]

    return get


@pytest.fixture(scope="module")
def direct_run(recipe_run):
    """Direct, think and manual-zoom groups: recipes/eval/qwen2_5_vl_7b_hf.yaml (lmms-eval's qwen2_5_vl)."""
    run = recipe_run("qwen2_5_vl_7b_hf.yaml")
    return run["results"], run["samples"], run["out"]


@pytest.fixture(scope="module")
def tool_run(recipe_run):
    """Agentic zoom group: recipes/eval/zoom_agent_vllm.yaml (the ai4va_zoom agent), Panel Understanding judged
    by the fake server."""
    run = recipe_run("zoom_agent_vllm.yaml")
    return run["results"], run["samples"], run["out"], run["log"], run["server"]


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
    # Prompt modes: the wording of ai4va_fg_dataset.core.prompts.
    from ai4va_fg_dataset.core.prompts import DIRECT_SUFFIX, THINK_SUFFIX

    assert samples["ai4va_fg_action_recognition"][0]["input"].endswith(DIRECT_SUFFIX)
    assert THINK_SUFFIX in samples["ai4va_fg_action_recognition_think"][0]["input"]
    assert "Options:\nA. running\nB. sitting" in samples["ai4va_fg_action_recognition"][0]["input"]
    # Groups report the macro average of their tasks' accuracy.
    for group, suffix, tasks in (("ai4va_fg", "", TASKS), ("ai4va_fg_think", "_think", TASKS),
                                 ("ai4va_fg_zoom", "_zoom", ZOOM_TASKS)):
        accs = [results["results"][f"ai4va_fg_{t}{suffix}"]["accuracy,none"] for t in tasks]
        assert results["groups"][group]["accuracy,none"] == pytest.approx(sum(accs) / len(accs))


def test_agentic_zoom_all_tasks(tool_run):
    results, samples, _, log, judge_server = tool_run
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
    # Panel Understanding: the answer went to the recipe's judge (its env block: gpt-4o-mini) at the fake
    # server, which said correct; verdicts cached.
    pu = res["ai4va_fg_panel_understanding_tool"]
    assert pu["accuracy,none"] == 1.0 and pu["judge_failure,none"] == 0.0
    assert judge_server.requests and all(r["judge"] and r["model"] == "gpt-4o-mini" for r in judge_server.requests)
    assert "Model answer: B" in judge_server.requests[0]["texts"][0]
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
    csv_lines = (out / "ai4va_fg_results.csv").read_text().splitlines()
    assert len([line for line in csv_lines if ",paper," not in line]) == 6  # header, random, 4 rows (+ the paper's)
    assert "| paper: 7B RARL |" in md and "## Warnings" not in md  # one dataset, no --limit: nothing to warn
    # every logged sample names its dataset row, so an error traces back to the item
    for task, logged in direct_run[1].items():
        assert logged and all(isinstance(s.get("id"), str) and s["id"] for s in logged), task


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


def _group_tasks(names: str) -> list[str]:
    """The AI4VA-FG tasks behind a recipe's ``tasks`` (groups expanded from lmms_eval_tasks/ai4va_fg)."""
    from lmms_eval_tasks import path as task_path

    groups = {}
    for src in task_path.TASKS_DIR.glob("*.yaml"):
        fields = task_path._task_fields(src)
        if "group" in fields:
            groups[fields["group"]] = fields["task"]
    return [t for name in names.split(",") for t in groups.get(name, [name])]


def test_override_table_names_every_recipe():
    """Every recipes/eval/*.yaml is in OVERRIDES with a reason, and OVERRIDES names no recipe that is gone."""
    assert RECIPES, "no recipes/eval/*.yaml"
    missing, stale = sorted(set(RECIPES) - set(OVERRIDES)), sorted(set(OVERRIDES) - set(RECIPES))
    assert not missing and not stale, (f"recipes/eval not in OVERRIDES (tests/test_eval_cli.py): {missing}; "
                                       f"OVERRIDES without a recipe: {stale}")
    assert all(o["why"] for o in OVERRIDES.values())


def _init_params(source: Path) -> set[str]:
    """Parameter names of every ``__init__`` defined in a Python file (read, not imported)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            names |= {a.arg for a in node.args.args + node.args.kwonlyargs} - {"self"}
    return names


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_model_args_fit_their_backend(name):
    """The model args a recipe passes are parameters of the backend it names (the vLLM ones too, which CI
    replaces), batch_size is never one of them (lmms-eval passes its own: "got multiple values for keyword
    argument 'batch_size'"), and no recipe needs FlashAttention-2."""
    recipe = yaml.safe_load((ROOT / "recipes" / "eval" / name).read_text())
    args = dict(kv.split("=", 1) for kv in recipe["model_args"].split(","))
    assert "batch_size" not in args, f"{name}: batch_size belongs at the top level of the config, not in model_args"
    assert args.get("attn_implementation", "sdpa") != "flash_attention_2", \
        f"{name}: flash_attention_2 needs `pip install --no-build-isolation -e \".[flash]\"`; ship sdpa"
    if recipe["model"] == "ai4va_zoom":
        sources = [ROOT / "lmms_eval_tasks" / "models" / "zoom_agent.py"]
    else:
        models = Path(importlib.util.find_spec("lmms_eval").submodule_search_locations[0]) / "models"
        sources = [models / kind / f"{recipe['model']}.py" for kind in ("chat", "simple")]
        sources = [s for s in sources if s.is_file()]
    assert sources, f"{name}: no lmms-eval backend named {recipe['model']!r}"
    params = set().union(*map(_init_params, sources))
    assert set(args) <= params, f"{name}: {sorted(set(args) - params)} are not arguments of {recipe['model']}"


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_runs_as_written(recipe_run, name):
    """The recipe, as written but for OVERRIDES, evaluates every task of its groups and writes results and
    samples; the exit code of `ai4va-fg eval` says so (plain lmms-eval exits 0 anyway: its log is read)."""
    assert name in OVERRIDES, f"recipes/eval/{name}: add it to OVERRIDES in tests/test_eval_cli.py"
    run = recipe_run(name)
    recipe, results, over = run["recipe"], run["results"], OVERRIDES[name]
    log = run["log"].read_text()
    assert "Error during evaluation" not in log, log[-3000:]
    if name != RAW_LMMS_EVAL:
        assert run["proc"].returncode == 0, log[-3000:]
    assert results["config"]["model"] == run["model"]
    assert int(results["config"]["batch_size"]) == int(recipe.get("batch_size", 1))
    n = over["limit"] or 2
    for task in _group_tasks(recipe["tasks"]):
        assert task in results["results"], f"{name}: {task} did not run"
        assert results["n-samples"][task]["effective"] == n and len(run["samples"][task]) == n
    assert "sk-local-secret" not in log and "g-local-secret" not in log
    if recipe["model"] in ("openai", "gemini"):
        # The recipe's own model and judge (its env block), both answered by the fake server.
        requests = run["server"].requests
        model_version = dict(kv.split("=", 1) for kv in recipe["model_args"].split(","))["model_version"]
        assert {r["model"] for r in requests if not r["judge"]} == {model_version}
        judged = [r for r in requests if r["judge"]]
        assert [r["model"] for r in judged] == [recipe["env"]["AI4VA_FG_JUDGE_MODEL"]]
        assert ("generateContent" in judged[0]["path"]) == (recipe["env"]["AI4VA_FG_JUDGE_PROVIDER"] == "gemini")
        assert results["results"]["ai4va_fg_panel_understanding"]["accuracy,none"] == 1.0  # "A", judged correct
        assert list((run["cwd"] / recipe["env"]["AI4VA_FG_JUDGE_CACHE"]).rglob("*.json"))


def _eval(env, *args, cwd=None, dataset=None):
    cmd = [str(BIN / "ai4va-fg"), "eval", *(["--dataset", str(dataset)] if dataset else []), *args]
    return subprocess.run(cmd, check=False, env=env["env"], capture_output=True, text=True, timeout=540,
                          cwd=cwd or env["base"])


def test_eval_wrapper_input_errors_exit_2(env, tmp_path):
    """Found before lmms-eval starts: one line naming what is missing and the `ai4va-fg build` command."""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _eval(env, "--tasks", "ai4va_fg", cwd=empty)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("ai4va-fg eval: error: no dataset at build/ai4va_fg (relative to "
                                   f"{empty}): build it with `ai4va-fg build --source auto --path DATA --out "
                                   "build/ai4va_fg`, or pass --dataset DIR_OR_HUB_ID")
    proc = _eval(env, "--tasks", "ai4va_fg", dataset=tmp_path / "nope")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "--out " + str(tmp_path / "nope") in proc.stderr
    partial = env["partial"]
    proc = _eval(env, "--model", "qwen2_5_vl", "--tasks", "ai4va_fg_action_recognition", dataset=partial)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ai4va-fg eval: error: task ai4va_fg_action_recognition needs the dataset config 'action_recognition' "
        f"with a test split, which {partial} does not have (its task configs: dialog_reordering, panel_reordering); "
        f"build it with `ai4va-fg build --source auto --path DATA --out {partial}` from annotations that have that task")
    # Tasks read from a --config: the manual-zoom group has no task in a reordering-only build.
    proc = _eval(env, "--config", str(ROOT / "recipes" / "eval" / "qwen2_5_vl_7b_hf.yaml"), dataset=partial)
    assert proc.returncode == 2 and "error: group ai4va_fg_zoom: none of its tasks' dataset configs" in proc.stderr
    proc = _eval(env, "--tasks", "ai4va_fg,ai4va_fg_nosuch", dataset=env["data"])
    assert proc.returncode == 2 and "unknown AI4VA-FG task or group 'ai4va_fg_nosuch'" in proc.stderr
    proc = _eval(env, "--model", "qwen2_5_vl", dataset=env["data"])
    assert proc.returncode == 2 and "no task to evaluate" in proc.stderr


def test_eval_wrapper_failures_inside_lmms_eval_exit_1(env, tmp_path):
    """Errors lmms-eval catches and exits 0 on become exit 1 and one line each: a task lmms-eval does not
    know, a model that cannot be built (batch_size in model_args: the TypeError of the old zoom recipe) and a
    dataset config missing from the data (a BuilderConfig error behind tenacity's RetryError)."""
    import shutil

    nocard = tmp_path / "nocard"  # a build without its card: nothing tells which task configs it has
    shutil.copytree(env["partial"], nocard, ignore=shutil.ignore_patterns("README.md"))
    tiny = TINY_QWEN.format(model=env["model"])
    configs = [
        {"model": "qwen2_5_vl", "model_args": tiny, "tasks": "not_a_task"},
        {"model": "ai4va_zoom", "model_args": f"pretrained={env['model']},backend=hf,batch_size=4",
         "tasks": "ai4va_fg_dialog_reordering_tool", "output_path": str(tmp_path / "out")},
        {"model": "qwen2_5_vl", "model_args": tiny, "tasks": "ai4va_fg_action_recognition",
         "output_path": str(tmp_path / "out")},
    ]
    cfg = tmp_path / "failing.yaml"
    cfg.write_text(yaml.safe_dump(configs))
    proc = _eval(env, "--config", str(cfg), "--limit", "1", dataset=nocard)
    (tmp_path / "failing.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ai4va-fg eval: error: ")]
    assert len(errors) == 3, proc.stderr[-3000:]
    assert errors[0].startswith("ai4va-fg eval: error: qwen2_5_vl on not_a_task: tasks not found: not_a_task")
    assert errors[1].startswith("ai4va-fg eval: error: ai4va_zoom on ai4va_fg_dialog_reordering_tool: TypeError: ")
    assert "got multiple values for keyword argument 'batch_size'" in errors[1]
    assert errors[2] == (
        f"ai4va-fg eval: error: qwen2_5_vl on ai4va_fg_action_recognition: the dataset {nocard} has no config "
        f"'action_recognition' (available: ['default']): the build has no action_recognition rows; build it with "
        f"`ai4va-fg build --source auto --path DATA --out {nocard}` from annotations that have that task")
    assert "RetryError" not in proc.stderr  # a known input error: no traceback
    assert not list((tmp_path / "out").rglob("*_results.json"))
