"""Vanilla GRPO baseline on AI4VA-FG: accuracy + format rewards, no tool (method.md section 4).

Paper run (Qwen2.5-VL-7B, 8 GPUs, vLLM colocate)::

    accelerate launch --config_file recipes/accelerate/zero2.yaml recipes/grpo.py \\
        --config recipes/configs/grpo_qwen2_5_vl_7b.yaml --dataset_path build/ai4va_fg

LoRA: append ``--use_peft --lora_r 64 --lora_alpha 128`` (adapters on the language model's attention and MLP
projections only, vision tower frozen: ``trl_rarl.recipe_setup.LANGUAGE_LORA_TARGET_MODULES``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from ai4va_fg_dataset.core.chat_template import install_tool_chat_template
from trl_rarl.data import load_tasks, to_grpo_dataset
from trl_rarl.recipe_setup import CLOSED_TASKS, DatasetArguments, parse_recipe_args
from trl_rarl.rewards import grpo_reward_funcs

logger = logging.getLogger("grpo")


@dataclass
class GRPOScriptArguments(DatasetArguments):
    """Dataset and prompt options of the vanilla GRPO baseline."""

    train_tasks: list[str] = field(
        default_factory=lambda: list(CLOSED_TASKS), metadata={"help": "Tasks to train on (default: closed-ended)."}
    )
    prompt_mode: str = field(default="think", metadata={"help": "Prompt mode: 'direct' or 'think'."})


def main(argv: list[str] | None = None):
    """Parse arguments, train vanilla GRPO and save the model to ``output_dir``.

    Args:
        argv: command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The ``trl.GRPOTrainer`` after training.

    Raises:
        ValueError: ``prompt_mode`` other than ``direct`` / ``think``.
    """
    from transformers import AutoProcessor

    script_args, training_args, model_args = parse_recipe_args((GRPOScriptArguments, GRPOConfig, ModelConfig), argv)
    if script_args.prompt_mode not in ("direct", "think"):
        raise ValueError(f"vanilla GRPO prompt_mode must be 'direct' or 'think', got {script_args.prompt_mode!r}")
    train = load_tasks(script_args.dataset_path, script_args.train_tasks, script_args.train_split,
                       max_rows=script_args.max_train_samples)
    train = to_grpo_dataset(train, script_args.prompt_mode)
    # Same template as evaluation and RARL (no tools are passed, so no tool block is rendered).
    processor = install_tool_chat_template(
        AutoProcessor.from_pretrained(model_args.model_name_or_path, padding_side="left")
    )
    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=grpo_reward_funcs(script_args.prompt_mode),
        args=training_args,
        train_dataset=train,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    return trainer


if __name__ == "__main__":
    main()
