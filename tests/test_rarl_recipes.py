"""Recipe pieces: SFT-R distillation with a fake teacher, and the shared recipe set-up (model kwargs, row cap).

The recipes themselves (RARL, vanilla GRPO, SFT-S, SFT-R) train from every shipped config, under every accelerate
config and with LoRA in ``tests/test_recipe_configs_train.py``."""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_rarl_trainer import dataset_dir, make_samples  # noqa: F401  (session fixture)


def _recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


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
