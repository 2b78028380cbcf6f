"""Test helper (not collected): run ``recipes/rarl.py`` unchanged, with scripted generations and per-rank records.

Usage (what ``tests/test_recipe_configs_train.py`` launches)::

    accelerate launch --config_file recipes/accelerate/X.yaml tests/rarl_launch_driver.py DUMP_DIR \\
        --config recipes/configs/rarl_tiny_cpu.yaml --dataset_path DIR --model_name_or_path TINY --output_dir OUT

The random tiny model never writes a tool call, so (as in ``tests/test_rarl_trainer.py``) the real model still
generates and its tokens are then replaced per rank (:func:`scripted_generate`): on rank 0 the even-numbered
rollouts' first turn zooms on the first GT box of their own environment's row, then answers ``B``; every other
rollout (odd ones on rank 0, all on the other ranks) answers ``B`` at once, without a tool call. Rank 0's groups
thus have unequal rewards (non-zero advantages and gradients), and the ranks' zoom records differ. Everything
else is the recipe's ``main()``: TRL's tool loop, the zoom environments, the rewards, the metrics gathered across
processes, the schedule, saving.

Each rank writes ``DUMP_DIR/rank{R}.json``::

    {"rank": R, "world_size": W,
     "batches": [{"step": global step, "input_ids": [row id per local rollout],
                  "env_ids": [row id each local environment was reset with],
                  "env_objects": number of distinct environment objects, "env_calls": [zoom calls per environment],
                  "reward_names": [...], "rewards": gathered rewards_per_func (rows: all ranks' rollouts)}],
     "log_history": trainer.state.log_history}
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trl_rarl.environment import ZoomEnvironment
from trl_rarl.trainer import RARLTrainer

ANSWER = "<think>the marked one sits</think><answer>B</answer>"


def _zoom_call(env: ZoomEnvironment) -> str:
    """A well-formed zoom call on the first GT box of ``env``'s row, in the frame the model sees."""
    (pw, ph), (x1, y1, x2, y2) = env.page_size, env.gt_boxes[0]
    fw, fh = env.frame.resized(pw, ph)
    box = [round(x1 * fw / pw), round(y1 * fh / ph), round(x2 * fw / pw), round(y2 * fh / ph)]
    call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box, "label": "hero"}}
    return "<think>zoom in</think><tool_call>\n" + json.dumps(call) + "\n</tool_call>"


SCRIPTS = ("zoom", "answer", "format")


def scripted_generate(real_generate, script: str = "zoom"):
    """A replacement for ``GRPOTrainer._generate_single_turn``: runs ``real_generate``, then replaces its tokens.

    Scripts (``i``: the rollout's index in the local batch):

    * ``"zoom"``: on rank 0, the first turn of even rollouts is :func:`_zoom_call` on their own environment;
      every other turn of every rank is :data:`ANSWER`. Without environments (vanilla GRPO) as ``"format"``.
    * ``"answer"``: every turn is :data:`ANSWER`.
    * ``"format"``: even rollouts :data:`ANSWER`, odd ones a bare ``B`` (no tags: format reward 0).

    ``"zoom"`` and ``"format"`` give rank 0's groups unequal rewards: non-zero advantages and gradients.

    Raises:
        ValueError: an unknown ``script``.
    """
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}; expected one of {SCRIPTS}")

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        ids, _ = real_generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        tok = self.processing_class.tokenizer
        envs = self.environments
        out = []
        for i in range(len(ids)):
            prompt = prompt_ids[i] if len(prompt_ids) == len(ids) else prompt_ids[i // num_generations]
            after_tool = "</tool_response>" in tok.decode(prompt[-80:])
            text = ANSWER
            if script == "format" or (script == "zoom" and not envs):
                text = ANSWER if i % 2 == 0 else "B"
            elif script == "zoom" and self.accelerator.process_index == 0 and i % 2 == 0 and not after_tool:
                text = _zoom_call(envs[i])  # first turn: i is the rollout, envs[i] its environment
            out.append(tok(text + "<|im_end|>")["input_ids"])
        return out, None

    return generate


def main() -> None:
    """Patch the trainer (scripted turns, records), then run ``recipes/rarl.py``'s ``main`` with the remaining
    arguments and write this rank's record."""
    dump_dir = Path(sys.argv[1])
    recipe_args = sys.argv[2:]
    record: dict = {"batches": []}

    real_reset = ZoomEnvironment.reset

    def reset(self, **row):
        self.row_id = row.get("id")
        return real_reset(self, **row)

    real_rewards = RARLTrainer._calculate_rewards

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = real_rewards(self, inputs, prompts, completions, completion_ids_list)
        envs = self.environments or []
        record["batches"].append({
            "step": self.state.global_step,
            "input_ids": [x["id"] for x in inputs],
            "env_ids": [getattr(e, "row_id", None) for e in envs],
            "env_objects": len({id(e) for e in envs}),
            "env_calls": [len(e.calls) for e in envs],
            "reward_names": list(self.reward_func_names),
            "rewards": rewards.tolist(),
        })
        return rewards

    ZoomEnvironment.reset = reset
    RARLTrainer._generate_single_turn = scripted_generate(RARLTrainer._generate_single_turn)
    RARLTrainer._calculate_rewards = calculate_rewards
    spec = importlib.util.spec_from_file_location("recipe_rarl", REPO / "recipes" / "rarl.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = recipe  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(recipe)
    trainer = recipe.main(recipe_args)
    rank = trainer.accelerator.process_index
    record.update(rank=rank, world_size=trainer.accelerator.num_processes, log_history=trainer.state.log_history)
    dump_dir.mkdir(parents=True, exist_ok=True)
    (dump_dir / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
