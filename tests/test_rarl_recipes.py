"""The training recipes run end to end on CPU with the tiny model: RARL via ``accelerate launch``, vanilla
GRPO, SFT-S and SFT-R for 1-2 steps, and SFT-R distillation with a fake teacher."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_rarl_trainer import dataset_dir, make_samples, tiny_model  # noqa: F401  (session fixtures)


def _recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _yaml(path, text):
    path.write_text(text)
    return str(path)


COMMON = """
max_steps: 1
per_device_train_batch_size: 2
use_cpu: true
bf16: false
report_to: none
save_strategy: "no"
logging_steps: 1
"""


def test_rarl_recipe_under_accelerate_launch(tiny_model, dataset_dir, tmp_path):  # noqa: F811  (session fixtures)
    out = tmp_path / "rarl"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "recipes/accelerate/cpu.yaml"),
           str(REPO / "recipes/rarl.py"), "--config", str(REPO / "recipes/configs/rarl_tiny_cpu.yaml"),
           "--dataset_path", dataset_dir, "--model_name_or_path", tiny_model, "--output_dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    logs = res.stdout + res.stderr
    # two logged steps, one per curriculum stage of rarl_tiny_cpu.yaml, with the zoom metrics
    assert "'schedule/stage': '0'" in logs and "'schedule/stage': '1'" in logs
    assert logs.count("'zoom/calls_per_sample'") == 2


def test_grpo_recipe_one_step(tiny_model, dataset_dir, tmp_path):  # noqa: F811  (session fixtures)
    cfg = _yaml(tmp_path / "grpo.yaml", COMMON + """
num_generations: 2
max_completion_length: 16
generation_kwargs: {suppress_tokens: [5, 6]}
train_tasks: [action_recognition, character_counting]
prompt_mode: think
""")
    out = tmp_path / "grpo"
    _recipe("grpo").main(["--config", cfg, "--dataset_path", dataset_dir, "--model_name_or_path", tiny_model,
                          "--output_dir", str(out)])
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("variant", ["sft_s", "sft_r"])
def test_sft_recipes_one_step(tiny_model, dataset_dir, tmp_path, variant):  # noqa: F811  (session fixtures)
    extra = []
    if variant == "sft_r":
        traj = tmp_path / "traj.jsonl"
        traj.write_text("".join(json.dumps({"id": f"action_recognition/p{i}/0", "task": "action_recognition",
                                            "trajectory": "<think>the marked one sits</think><answer>B</answer>"}) + "\n"
                                for i in range(4)))
        extra = ["--trajectories", str(traj)]
    cfg = _yaml(tmp_path / "sft.yaml", COMMON + f"variant: {variant}\ntrain_tasks: [action_recognition, depth_comparison]\n")
    out = tmp_path / variant
    _recipe("sft").main(["--config", cfg, "--dataset_path", dataset_dir, "--model_name_or_path", tiny_model,
                         "--output_dir", str(out), *extra])
    assert (out / "model.safetensors").is_file()


def test_distill_keeps_only_correct_well_formed_trajectories(tmp_path):
    distill = _recipe("distill_sft_r")
    rows = [s.to_row() for s in make_samples() if s.task == "action_recognition"]  # answer B

    class Teacher:
        def __init__(self):
            self.replies = iter([
                "<think>he sits</think><answer>B</answer>",  # kept
                "<think>he runs</think><answer>A</answer>",  # wrong
                "B",  # malformed
                RuntimeError("HTTP 503"),  # request error
                "<think>sitting</think><answer>sitting</answer>",  # retry of row 3: kept (option text)
                "<think>?</think><answer>D</answer>",  # row 4: wrong twice, dropped
                "<think>?</think><answer>C</answer>",
            ])

        def generate(self, prompt, images):
            assert "<think>" in prompt and len(images) == 1
            r = next(self.replies)
            if isinstance(r, Exception):
                raise r
            return r

    kept, stats = distill.distill(rows, Teacher(), attempts=2)
    assert [k["id"] for k in kept] == ["action_recognition/p0/0", "action_recognition/p2/0"]
    assert stats == {"action_recognition/kept": 2, "action_recognition/wrong": 3, "action_recognition/malformed": 1,
                     "action_recognition/error": 1}
    out = tmp_path / "t.jsonl"
    distill.write_jsonl(kept, str(out))
    from trl_rarl.data import load_trajectories

    assert load_trajectories(out) == {k["id"]: k["trajectory"] for k in kept}


def test_recipe_setup_merges_model_kwargs_and_keeps_first_rows(dataset_dir, tmp_path):  # noqa: F811  (session fixture)
    from trl import ModelConfig, SFTConfig

    from trl_rarl.data import load_tasks
    from trl_rarl.recipe_setup import CLOSED_TASKS, parse_recipe_args

    sft = _recipe("sft")
    script_args, training_args, _ = parse_recipe_args(
        (sft.SFTScriptArguments, SFTConfig, ModelConfig),
        ["--dataset_path", dataset_dir, "--output_dir", str(tmp_path), "--use_cpu", "true", "--bf16", "false",
         "--dtype", "float32", "--attn_implementation", "eager", "--model_init_kwargs", '{"attn_implementation": "sdpa"}'],
    )
    assert script_args.train_tasks == list(CLOSED_TASKS) and "panel_understanding" not in CLOSED_TASKS
    # ModelConfig's dtype is passed on; a key given in model_init_kwargs wins over ModelConfig's
    assert training_args.model_init_kwargs == {"dtype": "float32", "attn_implementation": "sdpa"}

    tasks = ["action_recognition", "character_counting"]
    full = load_tasks(dataset_dir, tasks)
    assert len(full) > 3
    assert load_tasks(dataset_dir, tasks, max_rows=3)["id"] == full["id"][:3]
    assert load_tasks(dataset_dir, tasks, max_rows=10**6)["id"] == full["id"]
