"""Region-Aware RL (RARL) on AI4VA-FG with TRL's GRPOTrainer (method.md sections 4-5).

Multi-turn rollouts with the ``image_zoom_in_tool`` crop tool, reward
``R = R_format + R_acc + (1 + 1[R_acc > 0]) * (R_tool_count + R_tool_acc)``, a 16-step warm start and
the sequential category curriculum; all options are fields of ``trl_rarl.RARLConfig`` (``--help``).

Paper run (Qwen2.5-VL-7B, 8 GPUs, vLLM colocate)::

    accelerate launch --config_file recipes/accelerate/zero2.yaml recipes/rarl.py \\
        --config recipes/configs/rarl_qwen2_5_vl_7b.yaml --dataset_path build/ai4va_fg

CPU smoke run with the tiny model::

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/rarl.py \\
        --config recipes/configs/rarl_tiny_cpu.yaml --dataset_path DIR --model_name_or_path build/tiny-qwen2.5-vl

LoRA: append ``--use_peft --lora_r 64 --lora_alpha 128`` (adapters on the language model's attention and MLP
projections only, vision tower frozen: ``trl_rarl.recipe_setup.LANGUAGE_LORA_TARGET_MODULES``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from trl import ModelConfig, get_peft_config

from trl_rarl.config import RARLConfig
from trl_rarl.data import load_tasks, to_grpo_dataset
from trl_rarl.recipe_setup import DatasetArguments, parse_recipe_args

logger = logging.getLogger("rarl")


@dataclass
class DataArguments(DatasetArguments):
    """Where the built AI4VA-FG dataset lives and which part of it to use (tasks: ``RARLConfig.train_tasks``)."""

    eval_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (None: no evaluation)."})


def make_judge(args: RARLConfig):
    """The LLM judge for open-ended accuracy, or ``None`` when no judge provider is configured.

    It is the evaluation's judge (:class:`ai4va_fg_dataset.core.llm.Judge`): the ``AI4VA_FG_JUDGE_*``
    settings that ``ai4va-fg eval`` reads, with ``judge_provider`` / ``judge_model`` / ``judge_base_url``
    of the config overriding them by name (a different model from evaluation's is then a visible choice).
    """
    if not args.judge_provider:
        return None
    from ai4va_fg_dataset.core.llm import JudgeSettings
    from trl_rarl.rewards import make_llm_judge

    return make_llm_judge(settings=JudgeSettings.from_env(
        provider=args.judge_provider, model=args.judge_model, base_url=args.judge_base_url))


def main(argv: list[str] | None = None):
    """Parse ``--config``/CLI arguments, build the dataset, train (resumes with ``--resume_from_checkpoint``) and save.

    Args:
        argv: command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The :class:`~trl_rarl.trainer.RARLTrainer` after training (its model saved to ``output_dir``).
    """
    from transformers import AutoProcessor

    from trl_rarl.trainer import RARLTrainer

    data_args, training_args, model_args = parse_recipe_args((DataArguments, RARLConfig, ModelConfig), argv)

    train = load_tasks(data_args.dataset_path, training_args.train_tasks, data_args.train_split,
                       max_rows=data_args.max_train_samples)
    train = to_grpo_dataset(train, training_args.prompt_mode, training_args.info_gap_max_pixels)
    eval_ds = None
    if data_args.eval_split:
        eval_ds = to_grpo_dataset(
            load_tasks(data_args.dataset_path, training_args.train_tasks, data_args.eval_split),
            training_args.prompt_mode,
            training_args.info_gap_max_pixels,
        )

    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path, padding_side="left")
    trainer = RARLTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=eval_ds,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        judge=make_judge(training_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    logger.info("saved to %s", training_args.output_dir)
    return trainer


if __name__ == "__main__":
    main()
