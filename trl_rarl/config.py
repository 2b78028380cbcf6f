"""``RARLConfig``: GRPO configuration plus the Region-Aware RL options (method.md sections 4-5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ai4va_fg_dataset.schema import TASKS

RARL_TASKS: tuple[str, ...] = (
    "panel_understanding",
    "action_recognition",
    "depth_comparison",
    "character_identification",
    "character_counting",
)
"""Tasks with GT grounding boxes: the five RARL trains on (method.md section 4; no boxes for reordering)."""

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
            unset.
        max_zoom_calls (`int`, *optional*, defaults to `4`):
            Maximum `image_zoom_in_tool` calls per rollout; later calls return an error to the model.
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

        format_reward_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the format reward.
        accuracy_reward_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the accuracy reward.
        tool_reward_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the tool rewards (tool count and tool IoU / grounding).
        tool_reward_conditioning (`str`, *optional*, defaults to `"one_plus"`):
            Factor on the tool reward: `"one_plus"` = ``1 + 1[R_acc > 0]`` (paper), `"pure"` = ``1[R_acc > 0]``
            (ablation, converged slower), `"none"` = 1.
        grounding_reward (`bool`, *optional*, defaults to `False`):
            Replace the tool IoU reward by the overlap-thresholded grounding reward (method.md section 5): a crop
            earns its IoU only when it covers at least `grounding_tau` of its matched GT box.
        grounding_tau (`float`, *optional*, defaults to `0.9`):
            Coverage threshold of the grounding reward.
        judge_provider (`str` or `None`, *optional*, defaults to `None`):
            Provider of the LLM judge for open-ended answers (`ai4va_fg_dataset.core.llm.make_client`); `None`
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
        default=5,
        metadata={"help": "Maximum assistant turns per rollout (sets max_tool_calling_iterations = max_turns - 1)."},
    )
    max_zoom_calls: int = field(
        default=4,
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
    format_reward_weight: float = field(default=1.0, metadata={"help": "Weight of the format reward."})
    accuracy_reward_weight: float = field(default=1.0, metadata={"help": "Weight of the accuracy reward."})
    tool_reward_weight: float = field(
        default=1.0, metadata={"help": "Weight of the tool rewards (tool count and tool IoU / grounding)."}
    )
    tool_reward_conditioning: str = field(
        default="one_plus",
        metadata={
            "help": "Factor on the tool reward: 'one_plus' = 1 + 1[acc > 0] (paper), 'pure' = 1[acc > 0], 'none' = 1.",
            "choices": list(TOOL_CONDITIONING),
        },
    )
    grounding_reward: bool = field(
        default=False,
        metadata={"help": "Use the overlap-thresholded grounding reward instead of the tool IoU reward."},
    )
    grounding_tau: float = field(default=0.9, metadata={"help": "Coverage threshold of the grounding reward."})
    judge_provider: str | None = field(
        default=None, metadata={"help": "LLM judge provider for open-ended answers (None: string match)."}
    )
    judge_model: str | None = field(default=None, metadata={"help": "LLM judge model name."})
    judge_base_url: str | None = field(default=None, metadata={"help": "Base URL of the judge endpoint."})
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
        # reward_weights follows the reward function order of trl_rarl.rewards.rarl_reward_funcs.
        if self.reward_weights is None:
            self.reward_weights = [
                self.format_reward_weight,
                self.accuracy_reward_weight,
                self.tool_reward_weight,
                self.tool_reward_weight,
            ]
        super().__post_init__()
