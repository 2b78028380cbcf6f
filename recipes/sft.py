"""SFT baselines on AI4VA-FG with TRL's SFTTrainer (method.md section 4).

* SFT-S: question -> ``<answer>X</answer>`` (``--variant sft_s``);
* SFT-R: question -> distilled ``<think>...</think><answer>X</answer>`` trajectories, only correct ones
  (``--variant sft_r --trajectories traj.jsonl``, from ``recipes/distill_sft_r.py``).

Paper run (Qwen2.5-VL-7B, 4 GPUs: lr 1e-5, 3 epochs, batch 16, cosine, warmup 0.1)::

    accelerate launch --config_file recipes/accelerate/zero2.yaml --num_processes 4 recipes/sft.py \\
        --config recipes/configs/sft_s_qwen2_5_vl_7b.yaml --dataset_path build/ai4va_fg

LoRA: append ``--use_peft --lora_r 64 --lora_alpha 128`` (adapters on the language model's attention and MLP
projections only, vision tower frozen: ``trl_rarl.recipe_setup.LANGUAGE_LORA_TARGET_MODULES``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

from ai4va_fg_dataset.core.chat_template import install_tool_chat_template
from trl_rarl.data import load_tasks, load_trajectories, to_sft_dataset
from trl_rarl.recipe_setup import CLOSED_TASKS, DatasetArguments, parse_recipe_args

logger = logging.getLogger("sft")


@dataclass
class SFTScriptArguments(DatasetArguments):
    """Dataset options of the SFT baselines."""

    variant: str = field(default="sft_s", metadata={"help": "'sft_s' (answers) or 'sft_r' (reasoning).", "choices": ["sft_s", "sft_r"]})
    trajectories: str | None = field(default=None, metadata={"help": "SFT-R trajectories JSONL (distill_sft_r.py)."})
    train_tasks: list[str] = field(
        default_factory=lambda: list(CLOSED_TASKS), metadata={"help": "Tasks to train on."}
    )


def main(argv: list[str] | None = None):
    """Parse arguments, run SFT-S or SFT-R and save the model to ``output_dir``.

    Args:
        argv: command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The ``trl.SFTTrainer`` after training.
    """
    from transformers import AutoProcessor

    script_args, training_args, model_args = parse_recipe_args((SFTScriptArguments, SFTConfig, ModelConfig), argv)
    train = load_tasks(script_args.dataset_path, script_args.train_tasks, script_args.train_split,
                       max_rows=script_args.max_train_samples)
    trajectories = load_trajectories(script_args.trajectories) if script_args.trajectories else None
    train = to_sft_dataset(train, script_args.variant, trajectories)
    processor = install_tool_chat_template(AutoProcessor.from_pretrained(model_args.model_name_or_path))
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
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
