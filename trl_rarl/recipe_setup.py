"""Set-up shared by the training recipes ``recipes/grpo.py``, ``recipes/sft.py`` and ``recipes/rarl.py``.

Each recipe (method.md section 4: vanilla GRPO, SFT-S/SFT-R and RARL) parses the same three kinds of
arguments, ``(its script arguments, a TRL training config, trl.ModelConfig)``, from ``--config`` YAML and
the command line, logs at INFO, and hands the model's ``dtype`` / ``attn_implementation`` to
``from_pretrained`` through ``training_args.model_init_kwargs``, and gives ``--use_peft`` LoRA its default
targets on Qwen2.5-VL (:data:`LANGUAGE_LORA_TARGET_MODULES`: the language model's linear layers, the vision
tower frozen; PEFT has no default for ``qwen2_5_vl``). :func:`parse_recipe_args` does all of that; every
recipe's script arguments extend :class:`DatasetArguments`, and the rows come from
:func:`trl_rarl.data.load_tasks` (with ``max_rows=max_train_samples`` for smoke runs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ai4va_fg_dataset.tasks.spec import closed_tasks

CLOSED_TASKS: tuple[str, ...] = closed_tasks(paper_only=True)
"""The paper's closed-ended tasks (choice / number answers, :attr:`ai4va_fg_dataset.tasks.spec.TaskSpec.closed`;
every paper task but ``panel_understanding``): the default training set of vanilla GRPO and SFT (method.md
section 4), from the task declarations. Tasks beyond the paper (``closed_tasks()``) are opt-in via ``--tasks``."""


LANGUAGE_LORA_TARGET_MODULES = (
    r"^(?!.*\bvisual\b).*\blayers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))$"
)
"""Default LoRA targets of the recipes, a PEFT ``target_modules`` regex (matched in full against module names):
the attention (``q/k/v/o_proj``) and MLP (``gate/up/down_proj``) linears of every decoder layer of the language
model (``model.language_model.layers.N.*`` in transformers 5, ``model.layers.N.*`` before), and nothing under
``visual``: the Qwen2.5-VL vision blocks' MLPs also have ``gate/up/down_proj``, which a plain list of these names
would adapt too."""


@dataclass
class DatasetArguments:
    """The dataset options every recipe has: the built folder, the training split and a row cap."""

    dataset_path: str = field(metadata={"help": "Built AI4VA-FG dataset folder (`ai4va-fg build --out DIR`)."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training rows (smoke runs)."}
    )


def model_init_kwargs(model_args) -> dict:
    """``from_pretrained`` kwargs from a ``trl.ModelConfig``: ``dtype`` (unless ``None``/``"auto"``) and
    ``attn_implementation`` (when set); empty when neither is given."""
    kwargs = {}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = model_args.dtype
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def apply_lora_defaults(model_args) -> None:
    """Give ``--use_peft`` LoRA the language-model-only targets when the user named none.

    PEFT has no default ``target_modules`` for model type ``qwen2_5_vl`` (``--use_peft`` alone fails with
    ``ValueError: Please specify target_modules``). With ``model_args.use_peft`` set and
    ``model_args.lora_target_modules`` unset (``None`` or empty), sets it to :data:`LANGUAGE_LORA_TARGET_MODULES`,
    so ``trl.get_peft_config(model_args)`` adapts the decoder layers' attention and MLP projections and PEFT
    freezes everything else, the vision tower included. A user's ``--lora_target_modules`` (names, a regex, or
    ``all-linear``, which adapts the vision tower too) is kept as given; without ``--use_peft`` nothing changes.

    Args:
        model_args: a ``trl.ModelConfig``, modified in place.
    """
    if model_args.use_peft and not model_args.lora_target_modules:
        model_args.lora_target_modules = LANGUAGE_LORA_TARGET_MODULES


def parse_recipe_args(arg_classes: Sequence[type], argv: list[str] | None = None) -> tuple[Any, Any, Any]:
    """Parse a recipe's ``(script arguments, training config, ModelConfig)`` and prepare them for training.

    Args:
        arg_classes: the three dataclasses, in that order (e.g. ``(SFTScriptArguments, SFTConfig, ModelConfig)``).
        argv: command-line arguments (``None``: ``sys.argv[1:]``); ``--config FILE`` reads a YAML file.

    Returns:
        ``(script_args, training_args, model_args)``. Logging is set to INFO,
        ``training_args.model_init_kwargs`` gains :func:`model_init_kwargs` of ``model_args`` (keys already
        in ``training_args.model_init_kwargs`` win), and :func:`apply_lora_defaults` sets the LoRA targets of a
        ``--use_peft`` run that names none.

    Raises:
        SystemExit: unknown or invalid arguments (``TrlParser``/``argparse``).
    """
    from trl import TrlParser

    script_args, training_args, model_args = TrlParser(tuple(arg_classes)).parse_args_and_config(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    training_args.model_init_kwargs = {**model_init_kwargs(model_args), **(training_args.model_init_kwargs or {})}
    apply_lora_defaults(model_args)
    return script_args, training_args, model_args
