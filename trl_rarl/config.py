"""``RARLConfig``: GRPO configuration plus the Region-Aware RL options (method.md sections 4-5)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from trl import GRPOConfig

from ai4va_fg_dataset.core.zoom_tool import DEFAULT_MAX_TURNS, DEFAULT_MAX_ZOOM_CALLS
from ai4va_fg_dataset.schema import TASKS
from ai4va_fg_dataset.tasks.spec import rarl_tasks

from .rewards import RARL_REWARDS, REWARD_FUNCS, WARM_START_REWARDS

RARL_TASKS: tuple[str, ...] = rarl_tasks(paper_only=True)
"""Tasks with GT grounding boxes: the five the paper's RARL trains on (method.md section 4; no boxes for
reordering), from the task declarations (``rl_trainable``); tasks beyond the paper are opt-in via ``train_tasks``."""

TOOL_CONDITIONING = ("one_plus", "pure", "none")


@dataclass
class RARLConfig(GRPOConfig):
    r"""
    Configuration class for [`RARLTrainer`]: [`~trl.GRPOConfig`] plus Region-Aware RL (RARL).

    Only the RARL parameters are listed; see [`~trl.GRPOConfig`] for the rest. The defaults follow the paper
    (method.md section 4): 5 turns, warm start of 16 steps, reward ``R = R_format + R_acc + R_tool`` with
    ``R_tool = (1 + 1[R_acc > 0]) * (R_tool_count + R_tool_acc)``.

    Parameters:
        > Parameters that control the rollout and the zoom tool

        prompt_mode (`str`, *optional*, defaults to `"tool"`):
            Prompt mode of `ai4va_fg_dataset.core.prompts.build_prompt` (`"direct"`, `"think"` or `"tool"`).
        max_turns (`int`, *optional*, defaults to `5`):
            Maximum assistant turns per rollout; sets `max_tool_calling_iterations = max_turns - 1` when that is
            unset. Default: `ai4va_fg_dataset.core.zoom_tool.DEFAULT_MAX_TURNS`, the eval agent's too.
        max_zoom_calls (`int`, *optional*, defaults to `4`):
            Maximum `image_zoom_in_tool` calls per rollout; later calls return an error to the model. Default:
            `ai4va_fg_dataset.core.zoom_tool.DEFAULT_MAX_ZOOM_CALLS`, the eval agent's `max_calls` too.
        zoom_min_size (`float`, *optional*, defaults to `28.0`):
            Minimum crop side in original pixels; smaller boxes grow around their centre.
        zoom_max_aspect_ratio (`float`, *optional*, defaults to `100.0`):
            Crops with a longer/shorter side ratio above this are rejected.
        use_tool_chat_template (`bool`, *optional*, defaults to `True`):
            Install the Qwen2.5-VL tool-calling chat template (`ai4va_fg_dataset/core/templates/qwen2_5_vl_tool.jinja`) on the
            processor, so crops returned by the tool reach the model.
        info_gap_max_pixels (`int` or `None`, *optional*, defaults to `None`):
            Information gap ("Learning to Focus", method.md section 5): downsample the page the model sees to at
            most this many pixels, while crops are cut from the full-resolution page. `None` disables it.

        > Parameters that control the reward

        reward_funcs (`list[str]`, *optional*, defaults to `["format_reward", "accuracy_reward", "tool_count_reward",
            "tool_iou_reward"]`):
            Names of the reward functions (`trl_rarl.rewards.REWARD_FUNCS`, see `register_reward`), in the order
            `RARLTrainer` passes them to `GRPOTrainer`. `grounding_reward` in place of `tool_iou_reward` is the
            overlap-thresholded grounding reward (method.md section 5): a crop earns its IoU only when it covers
            at least `grounding_tau` of its matched GT box.
        reward_weights (`dict[str, float]` or `list[float]`, *optional*):
            Weight of each reward, by name: a mapping `{name: weight}` (YAML), names from `reward_funcs`, a name
            left out weighing 1.0. It becomes TRL's list in `reward_funcs` order (`GRPOConfig.reward_weights`;
            `reward_weights_by_name` keeps the mapping). A list (TRL's form, the command line) is taken as
            TRL takes it: one weight per reward function passed to the trainer, in order. `None`: all 1.0.
        warm_start_reward_funcs (`list[str]`, *optional*, defaults to `["format_reward", "tool_count_reward"]`):
            Reward functions kept during the warm start, by name; the others weigh 0 until `warm_start_steps`.
        tool_reward_conditioning (`str`, *optional*, defaults to `"one_plus"`):
            Factor on the tool reward: `"one_plus"` = ``1 + 1[R_acc > 0]`` (paper), `"pure"` = ``1[R_acc > 0]``
            (ablation, converged slower), `"none"` = 1.
        grounding_tau (`float`, *optional*, defaults to `0.9`):
            Coverage threshold of the grounding reward.
        judge_provider (`str` or `None`, *optional*, defaults to `None`):
            Provider of the LLM judge for open-ended answers (`ai4va_fg_dataset.core.llm.Judge`, the evaluation's
            judge: its `AI4VA_FG_JUDGE_*` settings, overridden by name by the three `judge_*` fields here); `None`
            scores open answers by normalised string match.
        judge_model (`str` or `None`, *optional*, defaults to `None`):
            Judge model name.
        judge_base_url (`str` or `None`, *optional*, defaults to `None`):
            Base URL of an OpenAI-compatible judge endpoint.

        > Parameters that control the schedule

        warm_start_steps (`int`, *optional*, defaults to `16`):
            Phase 1 length in optimizer steps: only the format and tool-count rewards (no accuracy, no IoU, no
            correctness factor). Then the full reward.
        curriculum_stages (`list[str]` or `None`, *optional*, defaults to `None`):
            Sequential curriculum, one entry per stage: ``"task_a,task_b:steps"`` (``"all:steps"`` = every task
            of `train_tasks`). E.g. ``["action_recognition,depth_comparison:200",
            "character_identification,character_counting:200", "all:200"]``. `None`: no curriculum. When set and
            `max_steps` is not, `max_steps` is the sum of the stage lengths.
        train_tasks (`list[str]`, *optional*):
            AI4VA-FG tasks to train on. Defaults to the five tasks with GT boxes.
    """

    prompt_mode: str = field(
        default="tool",
        metadata={"help": "Prompt mode of build_prompt: 'direct', 'think' or 'tool'."},
    )
    max_turns: int = field(
        default=DEFAULT_MAX_TURNS,
        metadata={"help": "Maximum assistant turns per rollout (sets max_tool_calling_iterations = max_turns - 1)."},
    )
    max_zoom_calls: int = field(
        default=DEFAULT_MAX_ZOOM_CALLS,
        metadata={"help": "Maximum image_zoom_in_tool calls per rollout; later calls return an error."},
    )
    zoom_min_size: float = field(
        default=28.0,
        metadata={"help": "Minimum crop side in original pixels; smaller boxes grow around their centre."},
    )
    zoom_max_aspect_ratio: float = field(
        default=100.0,
        metadata={"help": "Crops with a long/short side ratio above this are rejected."},
    )
    use_tool_chat_template: bool = field(
        default=True,
        metadata={"help": "Install the Qwen2.5-VL tool-calling chat template (ai4va_fg_dataset/core/templates) on the processor."},
    )
    info_gap_max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Information gap (method.md section 5): downsample the page the model sees to at most this many "
            "pixels; crops come from the full-resolution page. None disables it."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: list(RARL_REWARDS),
        metadata={"help": "Reward function names (trl_rarl.rewards.REWARD_FUNCS), in order; grounding_reward in "
                  "place of tool_iou_reward for the overlap-thresholded grounding reward."},
    )
    warm_start_reward_funcs: list[str] = field(
        default_factory=lambda: list(WARM_START_REWARDS),
        metadata={"help": "Reward functions kept during the warm start (the others weigh 0 then), by name."},
    )
    tool_reward_conditioning: str = field(
        default="one_plus",
        metadata={
            "help": "Factor on the tool reward: 'one_plus' = 1 + 1[acc > 0] (paper), 'pure' = 1[acc > 0], 'none' = 1.",
            "choices": list(TOOL_CONDITIONING),
        },
    )
    grounding_tau: float = field(default=0.9, metadata={"help": "Coverage threshold of the grounding reward."})
    judge_provider: str | None = field(
        default=None, metadata={"help": "LLM judge provider for open-ended answers (None: string match)."}
    )
    judge_model: str | None = field(default=None, metadata={
        "help": "LLM judge model name (None: AI4VA_FG_JUDGE_MODEL or the evaluation's default, gpt-4o-mini / "
                "gemini-2.5-flash). Set it only to judge training with another model than evaluation."})
    judge_base_url: str | None = field(default=None, metadata={
        "help": "Base URL of the judge endpoint (None: AI4VA_FG_JUDGE_BASE_URL, as in evaluation)."})
    warm_start_steps: int = field(
        default=16,
        metadata={"help": "Warm-start length in optimizer steps: format + tool-count rewards only, then the full reward."},
    )
    curriculum_stages: list[str] | None = field(
        default=None,
        metadata={
            "help": "Sequential curriculum stages 'task_a,task_b:steps' ('all:steps' = every train task), in order. "
            "None: no curriculum."
        },
    )
    train_tasks: list[str] = field(
        default_factory=lambda: list(RARL_TASKS),
        metadata={"help": "AI4VA-FG tasks to train on (default: the five with GT boxes)."},
    )

    def __post_init__(self):
        if self.max_turns < 1:
            raise ValueError(f"max_turns={self.max_turns!r} must be >= 1")
        if self.max_tool_calling_iterations is None:
            self.max_tool_calling_iterations = self.max_turns - 1
        if self.tool_reward_conditioning not in TOOL_CONDITIONING:
            raise ValueError(
                f"tool_reward_conditioning={self.tool_reward_conditioning!r}; expected one of {TOOL_CONDITIONING}"
            )
        if not 0.0 <= self.grounding_tau <= 1.0:
            raise ValueError(f"grounding_tau={self.grounding_tau!r} must be in [0, 1]")
        if self.warm_start_steps < 0:
            raise ValueError(f"warm_start_steps={self.warm_start_steps!r} must be >= 0")
        unknown = [t for t in self.train_tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"train_tasks has unknown task(s) {unknown}; expected names from {TASKS}")
        if self.curriculum_stages:
            from .schedule import parse_stages

            stages = parse_stages(self.curriculum_stages, self.train_tasks)  # validates
            if self.max_steps is None or self.max_steps <= 0:
                self.max_steps = sum(s.steps for s in stages)
        self._resolve_reward_weights()
        super().__post_init__()

    def _resolve_reward_weights(self) -> None:
        """Check the reward names; turn a by-name ``reward_weights`` into TRL's list in ``reward_funcs`` order."""
        self.reward_funcs = list(self.reward_funcs)
        for option in ("reward_funcs", "warm_start_reward_funcs"):
            unknown = [n for n in getattr(self, option) if n not in REWARD_FUNCS]
            if unknown:
                raise ValueError(f"{option} has unknown reward(s) {unknown}; registered: {sorted(REWARD_FUNCS)}")
        if len(set(self.reward_funcs)) != len(self.reward_funcs):
            raise ValueError(f"reward_funcs={self.reward_funcs} names a reward twice")
        weights = self.reward_weights
        if weights is None:  # TRL: every reward function weighs 1.0
            return
        if isinstance(weights, Mapping):
            unknown = [n for n in weights if n not in self.reward_funcs]
            if unknown:
                raise ValueError(f"reward_weights names {unknown}, which are not in reward_funcs={self.reward_funcs}")
            weights = [weights.get(n, 1.0) for n in self.reward_funcs]
        weights = list(weights)
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"reward_weights has {w!r}; every weight must be a finite number")
        self.reward_weights = [float(w) for w in weights]

    @property
    def reward_weights_by_name(self) -> dict[str, float]:
        """``{reward name: weight}`` in ``reward_funcs`` order (``reward_weights`` as TRL takes it, by name).

        Raises:
            ValueError: ``reward_weights`` is a list whose length differs from ``reward_funcs`` (weights of
                reward functions passed to the trainer directly, which have no name here).
        """
        if self.reward_weights is None:
            return dict.fromkeys(self.reward_funcs, 1.0)
        if len(self.reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} weights for reward_funcs={self.reward_funcs}"
            )
        return dict(zip(self.reward_funcs, self.reward_weights))
