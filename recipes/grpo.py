"""Vanilla GRPO baseline on AI4VA-FG: accuracy + format rewards, no tool (method.md section 4).

Protocol: the paper's RL schedule, the same as RARL's and by the same code (``trl_rarl.schedule``): the thesis
trains RL "first [with] sequential training across three categories followed by merged training, since starting
with all tasks simultaneously causes convergence instability"): ``curriculum_stages`` action &
depth -> reordering -> character, 200 steps each, then 200 joint steps (``grpo_qwen2_5_vl_7b.yaml``). The
category-wise runs of the thesis's further comparison are ``grpo_{action_depth,reordering,character}_*.yaml``.
Without ``curriculum_stages`` every train task is sampled jointly from step 0.

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
from trl_rarl.schedule import (
    RARLSchedule,
    ScheduleCallback,
    curriculum_max_steps,
    curriculum_sampler,
    parse_stages,
)

logger = logging.getLogger("grpo")


@dataclass
class GRPOScriptArguments(DatasetArguments):
    """Dataset and prompt options of the vanilla GRPO baseline."""

    train_tasks: list[str] = field(
        default_factory=lambda: list(CLOSED_TASKS), metadata={"help": "Tasks to train on (default: closed-ended)."}
    )
    prompt_mode: str = field(default="think", metadata={"help": "Prompt mode: 'direct' or 'think'."})
    curriculum_stages: list[str] | None = field(
        default=None,
        metadata={"help": "Sequential curriculum stages 'task_a,task_b:steps' ('all:steps' = every train task), in "
                  "order, as RARL's (trl_rarl.schedule). None: every train task jointly. With stages and no "
                  "max_steps, max_steps = the sum of the stages."},
    )


class CurriculumGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with RARL's sequential category curriculum (:mod:`trl_rarl.schedule`, shared code).

    Each generation batch is drawn from the current stage's tasks (:func:`trl_rarl.schedule.curriculum_sampler`),
    the stage is kept in checkpoints (:class:`trl_rarl.schedule.ScheduleCallback`) and logged as
    ``schedule/stage`` every step. Without stages it is ``GRPOTrainer``.

    Args:
        schedule: the run's :class:`~trl_rarl.schedule.RARLSchedule` (no warm start: ``warm_start_steps`` 0).
        *args, **kwargs: as ``trl.GRPOTrainer``.
    """

    def __init__(self, *args, schedule: RARLSchedule, callbacks=None, **kwargs):
        self.schedule = schedule
        callbacks = list(callbacks or []) + ([ScheduleCallback(schedule)] if schedule.stages else [])
        super().__init__(*args, callbacks=callbacks, **kwargs)

    def _get_train_sampler(self, dataset=None):
        sampler = curriculum_sampler(self, self.schedule, dataset)
        return sampler if sampler is not None else super()._get_train_sampler(dataset)

    def _generate_and_score_completions(self, inputs):
        if self.schedule.stages and self.model.training:
            self._metrics["train"]["schedule/stage"].append(float(self.schedule.stage_index(self.state.global_step)))
        return super()._generate_and_score_completions(inputs)


def main(argv: list[str] | None = None):
    """Parse arguments, train vanilla GRPO and save the model to ``output_dir``.

    Args:
        argv: command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The :class:`CurriculumGRPOTrainer` after training.

    Raises:
        ValueError: ``prompt_mode`` other than ``direct`` / ``think``; a bad ``curriculum_stages`` entry or one
            naming a task outside ``train_tasks``.
    """
    from transformers import AutoProcessor

    script_args, training_args, model_args = parse_recipe_args((GRPOScriptArguments, GRPOConfig, ModelConfig), argv)
    if script_args.prompt_mode not in ("direct", "think"):
        raise ValueError(f"vanilla GRPO prompt_mode must be 'direct' or 'think', got {script_args.prompt_mode!r}")
    stages = parse_stages(script_args.curriculum_stages or [], script_args.train_tasks)
    schedule = RARLSchedule(warm_start_steps=0, stages=tuple(stages))
    training_args.max_steps = curriculum_max_steps(schedule, training_args.max_steps)
    train = load_tasks(script_args.dataset_path, script_args.train_tasks, script_args.train_split,
                       max_rows=script_args.max_train_samples)
    train = to_grpo_dataset(train, script_args.prompt_mode)
    # Same template as evaluation and RARL (no tools are passed, so no tool block is rendered).
    processor = install_tool_chat_template(
        AutoProcessor.from_pretrained(model_args.model_name_or_path, padding_side="left")
    )
    trainer = CurriculumGRPOTrainer(
        schedule=schedule,
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
