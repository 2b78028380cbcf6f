"""``RARLTrainer``: GRPO with multi-turn zoom rollouts, IoU rewards, warm start and curriculum.

A thin subclass of TRL's ``GRPOTrainer`` (method.md sections 4-5). TRL already runs the multi-turn
tool loop (``environment_factory``), feeds returned crops into the next turn and the forward pass,
and masks tool tokens from the loss. This class only:

* supplies the defaults: the tool chat template, the zoom environment, the RARL rewards;
* switches the reward weights at the end of the warm start (``_generate_and_score_completions``);
* samples by curriculum stage (``_get_train_sampler``);
* drops the zoom calls whose results TRL rolled back before scoring, and logs zoom metrics every step
  (``_calculate_rewards``), plus ``schedule/phase`` and ``schedule/stage``;
* under DeepSpeed ZeRO-3 without vLLM, gathers the sharded weights once for a whole multi-turn rollout
  (``_generate``), so ranks whose rollouts take different numbers of tool turns do not issue mismatched
  collectives (TRL gathers per turn: a rank with more turns waits in an all-gather its peers never join).
"""

from __future__ import annotations

import functools
import textwrap
from contextlib import contextmanager

import torch
from trl import GRPOTrainer

from ai4va_fg_dataset.core.chat_template import install_tool_chat_template

from .config import RARLConfig
from .environment import zoom_environment_factory
from .metrics import METRIC_NAMES, zoom_metrics
from .rewards import WARM_START_REWARDS, rarl_reward_funcs
from .schedule import WARM_START, RARLSchedule, ScheduleCallback, curriculum_sampler


class RARLTrainer(GRPOTrainer):
    """Region-Aware RL trainer (method.md sections 4-5).

    Args:
        model: model id/path or a loaded Qwen2.5-VL (as for ``GRPOTrainer``).
        reward_funcs: defaults to :func:`trl_rarl.rewards.rarl_reward_funcs` ``(args, judge)``: the rewards
            ``args.reward_funcs`` names, in that order, weighted by ``args.reward_weights``.
        args: a :class:`~trl_rarl.config.RARLConfig`.
        train_dataset: AI4VA-FG rows with a ``prompt`` column (:func:`trl_rarl.data.to_grpo_dataset`);
            with a curriculum, a ``task`` column too.
        processing_class: the processor; loaded from ``model`` when ``None``. The tool chat template is
            installed on it unless ``args.use_tool_chat_template`` is false.
        environment_factory: defaults to :func:`trl_rarl.environment.zoom_environment_factory`.
        judge: optional ``judge(question, reference, prediction) -> bool`` for open-ended accuracy
            (:func:`ai4va_fg_dataset.core.scoring.score_answer`).
        **kwargs: passed to ``GRPOTrainer`` (``eval_dataset``, ``callbacks``, ``peft_config``, ...).

    Raises:
        ValueError: a curriculum whose tasks have no rows, or a dataset without ``task`` under a curriculum;
            DeepSpeed ZeRO-3 with transformers generation (no vLLM) and ``ds3_gather_for_generation=False``
            (per-layer gathering cannot follow rollouts whose number of turns differs between ranks).
    """

    _tag_names = ["trl", "grpo", "rarl", "ai4va-fg"]  # noqa: RUF012  (as in TRL trainers)
    _name = "RARL"
    _paper = {  # noqa: RUF012
        "title": "Zooming into Comics: Region-Aware RL Improves Fine-Grained Comic Understanding in "
        "Vision-Language Models",
        "id": "2511.06490",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{chen2025zooming,
                title        = {{Zooming into Comics: Region-Aware RL Improves Fine-Grained Comic Understanding in Vision-Language Models}},
                author       = {Chen and Ren and S{\\"u}sstrunk},
                year         = 2025,
                eprint       = {arXiv:2511.06490},
            }"""),
    }

    def __init__(
        self,
        model,
        reward_funcs=None,
        args: RARLConfig | None = None,
        train_dataset=None,
        processing_class=None,
        environment_factory=None,
        judge=None,
        callbacks=None,
        **kwargs,
    ):
        if args is None:
            args = RARLConfig("rarl-output")
        if processing_class is None:
            from transformers import AutoProcessor

            name = model if isinstance(model, str) else model.config._name_or_path
            processing_class = AutoProcessor.from_pretrained(name, padding_side="left")
        if getattr(args, "use_tool_chat_template", True):
            install_tool_chat_template(processing_class)
        self.schedule = RARLSchedule.from_config(args)
        if reward_funcs is None:
            reward_funcs = rarl_reward_funcs(args, judge)
        if environment_factory is None:
            environment_factory = zoom_environment_factory(processing_class, args)
        callbacks = list(callbacks or []) + [ScheduleCallback(self.schedule)]
        super().__init__(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            environment_factory=environment_factory,
            callbacks=callbacks,
            **kwargs,
        )
        self._full_reward_weights = self.reward_weights.clone()
        # Warm start by reward name (TRL names a reward function after the function a partial wraps, i.e. its
        # registry name): rewards not in args.warm_start_reward_funcs weigh 0 until warm_start_steps.
        warm_names = set(getattr(args, "warm_start_reward_funcs", WARM_START_REWARDS))
        self._warm_reward_weights = self.reward_weights * torch.tensor(
            [float(name in warm_names) for name in self.reward_func_names]
        )
        # ZeRO-3 + transformers generation: TRL gathers the sharded weights (a collective) on every turn, and
        # generate() syncs every decoding step across ranks; rollouts end after different numbers of turns on
        # different ranks, so both are replaced by one gather per rollout batch (_generate).
        self._gather_once_for_rollouts = bool(self.tools) and self._dist.is_zero3 and not self.use_vllm
        if self._gather_once_for_rollouts and not self.args.ds3_gather_for_generation:
            raise ValueError(
                "RARL under DeepSpeed ZeRO-3 without vLLM needs ds3_gather_for_generation=True: with per-layer "
                "gathering, ranks whose rollouts take different numbers of tool turns issue different numbers "
                "of collectives and hang. Set ds3_gather_for_generation=True, use vLLM, or use ZeRO-2."
            )

    # --- curriculum ---------------------------------------------------------------------------
    def _get_train_sampler(self, dataset=None):  # shared with recipes/grpo.py (vanilla GRPO)
        sampler = curriculum_sampler(self, self.schedule, dataset)
        return sampler if sampler is not None else super()._get_train_sampler(dataset)

    # --- ZeRO-3 multi-turn rollouts -------------------------------------------------------------
    def _generate(self, prompts):
        if not self._gather_once_for_rollouts:
            return super()._generate(prompts)
        with self._weights_gathered_for_rollouts():
            return super()._generate(prompts)

    @contextmanager
    def _weights_gathered_for_rollouts(self):
        """Hold the full ZeRO-3 weights for a whole batch of multi-turn rollouts (every rank enters once per batch).

        Inside, the per-turn gather of TRL's ``_generate_single_turn`` is switched off
        (``ds3_gather_for_generation``) and ``generate()`` runs unsynchronised (``synced_gpus=False``): with the
        weights local, no collective depends on how many turns or tokens a rank's rollouts take. Restores
        both, and DeepSpeed's parameter hooks, on exit.
        """
        import deepspeed
        from trl.models.utils import add_hooks, remove_hooks

        model = self.model_wrapped
        unwrapped = self.accelerator.unwrap_model(model)
        with deepspeed.zero.GatheredParameters(model.parameters()):
            remove_hooks(model)
            self.args.ds3_gather_for_generation = False
            unwrapped.generate = functools.partial(unwrapped.generate, synced_gpus=False)
            try:
                yield
            finally:
                del unwrapped.generate
                self.args.ds3_gather_for_generation = True
                add_hooks(model)

    # --- warm start ---------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        step = self.state.global_step
        warm = mode == "train" and self.schedule.phase(step) == WARM_START
        self.reward_weights = self._warm_reward_weights if warm else self._full_reward_weights
        if mode == "train":
            self._metrics[mode]["schedule/phase"].append(0.0 if warm else 1.0)
            self._metrics[mode]["schedule/stage"].append(float(self.schedule.stage_index(step)))
        return super()._generate_and_score_completions(inputs)

    # --- metrics ------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Crops whose tool messages TRL rolled back (budget overflow) were never seen: no reward for them.
        for env, completion in zip(self.environments or [], completions):
            if hasattr(env, "drop_undelivered"):
                env.drop_undelivered(completion)
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        stats = zoom_metrics(self.environments or [None] * len(completions), completions)
        local = torch.tensor([stats[name] for name in METRIC_NAMES], dtype=torch.float32, device=self.accelerator.device)
        total = self.accelerator.gather(local.unsqueeze(0)).sum(dim=0)
        for name, (s, c) in zip(METRIC_NAMES, total.tolist()):
            if c > 0:
                self._metrics[mode][name].append(s / c)
        return rewards_per_func
