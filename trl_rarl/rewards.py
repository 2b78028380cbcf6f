"""RARL reward functions (method.md sections 4-5), in TRL's ``reward_funcs`` form.

For a trajectory with ``m`` executed zoom calls (method.md section 4):

    R = R_format + R_acc + R_tool,
    R_tool = (1 + 1[R_acc > 0]) * (R_tool_count + R_tool_acc),
    R_tool_acc = (1 / sqrt(m)) * sum_i IoU(box_i, matched GT region).

``R_tool`` is split over two reward functions, :func:`tool_count_reward` and :func:`tool_iou_reward`
(each carrying the correctness factor), so TRL logs every component; their weighted sum is exactly
``R_tool``. :func:`grounding_reward` is the optional overlap-thresholded variant of ``R_tool_acc``
("Learning to Focus", method.md section 5).

Every function takes TRL's keyword arguments (``completions``, dataset columns such as ``answer``,
``answer_type``, ``bboxes``, and ``environments``, ``trainer_state``) and returns one float per
completion. Malformed input (unparseable tool calls, a truncated completion, a missing answer, an
environment without a page) gives a zero reward, never an exception.

``R_acc`` is the evaluation metric: :func:`accuracy_reward` scores each completion with
:func:`ai4va_fg_dataset.core.scoring.score_answer`, the function lmms-eval's ``process_results`` calls
(``tests/test_scoring_table.py`` checks both paths on one table of completions).

Rewards are registered by name (:data:`REWARD_FUNCS`, :func:`register_reward`); a
:class:`~trl_rarl.config.RARLConfig` names them in ``reward_funcs`` with their ``reward_weights`` by
name, :func:`rarl_reward_funcs` builds that list in that order, and the trainer's warm start keeps the
rewards named in ``warm_start_reward_funcs``.

Robustness guarantees (one bad rollout must not kill a training run):

* tool calls are read by :func:`ai4va_fg_dataset.core.zoom_tool.parse_tool_calls`, the parser and
  validator the zoom tool, the environment and the eval agent use: one verdict on what is malformed;
  it is linear in the completion length and bounded (see its module docstring);
* every reward is computed in linear time (no regex rescans from each unclosed tag) and is a finite
  float; a completion that still makes a reward computation raise scores 0 for that term, is logged
  (warning) and counted in :data:`REWARD_ERRORS`;
* the LLM judge of :func:`make_llm_judge` is the evaluation's (:class:`ai4va_fg_dataset.core.llm.Judge`): only a
  well-formed JSON verdict counts, failures are retried with backoff, then score 0.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
import math
import re
import types
from collections.abc import Callable, Sequence
from typing import Any

from ai4va_fg_dataset.core import geometry
from ai4va_fg_dataset.core.scoring import score_answer
from ai4va_fg_dataset.core.tool_calls import CLOSE_TAG, OPEN_TAG, ToolCallError, parse_tool_calls

logger = logging.getLogger(__name__)

REWARD_ERRORS: collections.Counter = collections.Counter()
"""Per reward term, how many completions made its computation raise (each scored 0 and logged)."""

THINK_ANSWER = re.compile(r"^\s*<think>(?:(?!</?think>).)+</think>\s*<answer>(?:(?!</?answer>).)+</answer>\s*$", re.DOTALL)
THINK_TOOL = re.compile(
    r"^\s*<think>(?:(?!</?think>).)+</think>\s*(?:<tool_call>(?:(?!</?tool_call>).)+</tool_call>\s*)+$", re.DOTALL
)
ANSWER_ONLY = re.compile(r"^\s*<answer>(?:(?!</?answer>).)+</answer>\s*$", re.DOTALL)


def _guarded(term: str, default: float, fn: Callable[..., float], *args) -> float:
    """``fn(*args)`` as a finite float; an exception or a non-finite value gives ``default``, logged and counted."""
    try:
        value = float(fn(*args))
    except Exception as exc:  # noqa: BLE001  (one hostile completion must not kill the training run)
        REWARD_ERRORS[term] += 1
        logger.warning("%s: %s: %s; this completion scores %s", term, type(exc).__name__, str(exc)[:200], default)
        return default
    if not math.isfinite(value):
        REWARD_ERRORS[term] += 1
        logger.warning("%s: non-finite value %r; this completion scores %s", term, value, default)
        return default
    return value


# --------------------------------------------------------------------------------------------- text


def _serialise_call(call: Any) -> str:
    """One parsed tool call (TRL's ``{"type": "function", "function": {...}}``) as a ``<tool_call>`` block.

    A call that cannot be written back as JSON (a value JSON cannot hold, nesting past Python's
    recursion limit, an integer of thousands of digits) becomes a block the parser reports as malformed.
    """
    fn = call.get("function", call) if isinstance(call, dict) else call
    if not isinstance(fn, dict):
        body = f"<tool call of type {type(fn).__name__}, not an object>"
    else:
        payload = {"name": fn.get("name"), "arguments": fn.get("arguments", {})}
        try:
            body = json.dumps(payload)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            body = f"<unserialisable tool call: {type(exc).__name__}>"
    return OPEN_TAG + "\n" + body + "\n" + CLOSE_TAG


def _message_text(message: dict) -> str:
    """An assistant message as the text the model wrote: content, then its parsed tool calls re-serialised."""
    content = message.get("content") or ""
    if isinstance(content, (list, tuple)):
        content = "".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    elif not isinstance(content, str):
        content = str(content)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, (list, tuple)):
        calls = [calls]
    return "".join([content] + [_serialise_call(call) for call in calls])


def assistant_turns(completion: Any) -> list[str]:
    """The assistant turns of one completion, as text.

    Args:
        completion: a string (standard format) or TRL's conversational completion, a list of messages
            (assistant turns with parsed ``tool_calls``, interleaved with ``tool`` results).

    Returns:
        One string per assistant turn (tool calls re-serialised as ``<tool_call>{json}</tool_call>``).
    """
    if isinstance(completion, str):
        return [completion]
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, list):
        return [""]
    turns = [_message_text(m) for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
    return turns or [""]


def completion_text(completion: Any) -> str:
    """A completion as the text its answer is read from: the assistant turns joined by newlines (tool calls
    re-serialised), as the eval's zoom agent records a trajectory (``lmms_eval_tasks.trajectory``)."""
    return "\n".join(assistant_turns(completion))


def count_parse_failures(completion: Any) -> int:
    """Number of invalid ``<tool_call>`` blocks (malformed JSON, wrong name/arguments, unclosed) in a completion."""
    return sum(isinstance(c, ToolCallError) for turn in assistant_turns(completion) for c in parse_tool_calls(turn))


# ------------------------------------------------------------------------------------------- format


def format_score(completion: Any, mode: str = "tool") -> float:
    """1.0 if the completion follows the prompt mode's format (method.md section 3), else 0.0.

    * ``tool``: every turn but the last is ``<think>...</think>`` followed by one or more valid
      ``<tool_call>`` blocks; the last turn is ``<think>...</think><answer>...</answer>`` (no tool call).
      Any invalid tool call (bad JSON, wrong name or arguments, truncated) scores 0.
    * ``think``: one turn ``<think>...</think><answer>...</answer>``.
    * ``direct``: one turn ``<answer>...</answer>``.
    """
    turns = assistant_turns(completion)
    if mode == "direct":
        return float(len(turns) == 1 and bool(ANSWER_ONLY.match(turns[0])))
    if mode == "think":
        return float(len(turns) == 1 and bool(THINK_ANSWER.match(turns[0])))
    if count_parse_failures(completion):
        return 0.0
    *calls, last = turns
    if not all(THINK_TOOL.match(t) for t in calls):
        return 0.0
    return float(bool(THINK_ANSWER.match(last)))


def format_reward(completions: list, mode: str = "tool", **kwargs) -> list[float]:
    """R_format (method.md section 4): :func:`format_score` of each completion (1 well-formed, 0 otherwise).

    Never raises for a completion: one whose scoring fails scores 0 (logged, counted in :data:`REWARD_ERRORS`).
    """
    return [_guarded("format_reward", 0.0, format_score, c, mode) for c in completions]


# ----------------------------------------------------------------------------------------- accuracy


def accuracy_score(
    completion: Any,
    answer: Any,
    answer_type: str,
    choices: Sequence[str] | None = None,
    question: str | None = None,
    judge: Callable | None = None,
) -> float:
    """R_acc of one completion: :func:`ai4va_fg_dataset.core.scoring.score_answer` of its
    :func:`completion_text`, the score the evaluation metric gives (method.md section 3).

    Raises:
        ValueError: a bad dataset row (unknown ``answer_type``, a key that is not an option letter or
            an integer); :func:`accuracy_reward` turns it into a logged 0.
    """
    return score_answer(completion_text(completion), answer_type=answer_type, key=answer, choices=choices,
                        question=question, judge=judge).score


def accuracy_reward(
    completions: list,
    answer: list[str],
    answer_type: list[str],
    choices: list | None = None,
    question: list | None = None,
    judge: Callable | None = None,
    **kwargs,
) -> list[float]:
    """R_acc (method.md section 4): :func:`accuracy_score` of each completion, 1.0 correct, 0.0 otherwise.

    The same rules as the lmms-eval metric (``ai4va_fg_dataset.core.scoring``): the last ``<answer>`` of
    the whole trajectory, or an explicit answer without tags; open answers by ``judge(question,
    reference, prediction) -> bool`` when given, else the normalised exact match. Never raises for a
    completion: one whose scoring fails scores 0 (logged, counted in :data:`REWARD_ERRORS`).
    """
    n = len(completions)
    choices = choices if choices is not None else [None] * n
    question = question if question is not None else [None] * n
    return [
        _guarded("accuracy_reward", 0.0, accuracy_score, c, a, t, ch, q, judge)
        for c, a, t, ch, q in zip(completions, answer, answer_type, choices, question)
    ]


# --------------------------------------------------------------------------------------------- tool


def correctness_factor(acc: float, conditioning: str = "one_plus") -> float:
    """The factor on R_tool (method.md section 4): ``1 + 1[acc > 0]`` (``one_plus``), ``1[acc > 0]`` (``pure``),
    or 1 (``none``).

    Raises:
        ValueError: unknown ``conditioning``.
    """
    if conditioning == "one_plus":
        return 1.0 + float(acc > 0)
    if conditioning == "pure":
        return float(acc > 0)
    if conditioning == "none":
        return 1.0
    raise ValueError(f"unknown tool_reward_conditioning {conditioning!r}")


def tool_count_score(num_calls: int, num_gt: int) -> float:
    """R_tool_count (method.md section 4): 1 when the number of executed zoom calls equals the number of GT
    regions, decreasing linearly by ``1/max(n, 1)`` per missing or extra call, floored at 0."""
    return max(0.0, 1.0 - abs(num_calls - num_gt) / max(num_gt, 1))


def tool_iou_score(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]]) -> float:
    """R_tool_acc (method.md section 4): ``(1/sqrt(m)) * sum_i IoU(box_i, matched GT)``.

    Predicted boxes (``m`` executed crops, original pixels) are matched one-to-one to GT boxes with
    :func:`~ai4va_fg_dataset.core.geometry.match_boxes` (Hungarian, max total IoU); unmatched crops score 0.
    0 when ``m == 0`` or there is no GT box.
    """
    m = len(pred)
    if m == 0 or not gt:
        return 0.0
    return sum(i for _, _, i in geometry.match_boxes(pred, gt)) / math.sqrt(m)


def grounding_score(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], tau: float = 0.9) -> float:
    """Overlap-thresholded grounding reward ("Learning to Focus", method.md section 5).

    As :func:`tool_iou_score`, but a matched crop earns its IoU only when it covers at least ``tau`` of its
    GT box (``geometry.coverage(crop, gt) >= tau``).
    """
    m = len(pred)
    if m == 0 or not gt:
        return 0.0
    total = sum(i for p, g, i in geometry.match_boxes(pred, gt) if geometry.coverage(pred[p], gt[g]) >= tau)
    return total / math.sqrt(m)


def _env_boxes(env) -> tuple[list, list]:
    if env is None:
        return [], []
    return list(getattr(env.tool, "executed_boxes", []) if env.tool is not None else []), list(env.gt_boxes)


def _conditioned_tool_scores(
    score: Callable[[list, list], float],
    completions, environments, answer, answer_type, choices, question, trainer_state, conditioning,
    warm_start_steps, judge,
) -> list[float]:
    """``correctness_factor(R_acc) * score(executed crops, GT boxes)`` per completion, the part shared by
    :func:`tool_count_reward` and :func:`tool_iou_reward`; the factor is 1 during the warm start
    (``trainer_state.global_step < warm_start_steps``) and a missing environment scores ``score([], [])``."""
    if trainer_state is not None and trainer_state.global_step < warm_start_steps:
        factors = [1.0] * len(completions)
    else:
        accs = accuracy_reward(completions, answer, answer_type, choices, question, judge)
        factors = [correctness_factor(a, conditioning) for a in accs]
    return [
        _guarded("tool_reward", 0.0, lambda f, env: f * score(*_env_boxes(env)), f, env)
        for f, env in zip(factors, environments or [None] * len(completions))
    ]


def tool_count_reward(
    completions: list,
    environments: list,
    answer: list[str],
    answer_type: list[str],
    choices: list | None = None,
    question: list | None = None,
    trainer_state=None,
    conditioning: str = "one_plus",
    warm_start_steps: int = 0,
    judge: Callable | None = None,
    **kwargs,
) -> list[float]:
    """Correctness-conditioned R_tool_count: ``factor * tool_count_score(m, n)`` (method.md section 4).

    ``m`` = executed (accepted) zoom calls recorded by the rollout's environment, ``n`` = GT boxes of the
    sample. During the warm start (``trainer_state.global_step < warm_start_steps``) the factor is 1.
    """
    return _conditioned_tool_scores(
        lambda pred, gt: tool_count_score(len(pred), len(gt)),
        completions, environments, answer, answer_type, choices, question, trainer_state, conditioning,
        warm_start_steps, judge,
    )


def tool_iou_reward(
    completions: list,
    environments: list,
    answer: list[str],
    answer_type: list[str],
    choices: list | None = None,
    question: list | None = None,
    trainer_state=None,
    conditioning: str = "one_plus",
    warm_start_steps: int = 0,
    judge: Callable | None = None,
    grounding_tau: float | None = None,
    **kwargs,
) -> list[float]:
    """Correctness-conditioned R_tool_acc: ``factor * tool_iou_score(crops, GT)`` (method.md section 4), or with
    ``grounding_tau`` set, ``factor * grounding_score(crops, GT, tau)`` (method.md section 5)."""
    score = tool_iou_score if grounding_tau is None else functools.partial(grounding_score, tau=grounding_tau)
    return _conditioned_tool_scores(
        score, completions, environments, answer, answer_type, choices, question, trainer_state, conditioning,
        warm_start_steps, judge,
    )


def grounding_reward(completions: list, environments: list, answer: list[str], answer_type: list[str],
                     tau: float = 0.9, **kwargs) -> list[float]:
    """Correctness-conditioned grounding reward (method.md section 5): :func:`tool_iou_reward` with ``grounding_tau=tau``."""
    return tool_iou_reward(completions, environments, answer, answer_type, grounding_tau=tau, **kwargs)


# --------------------------------------------------------------------------------------------- build


@dataclasses.dataclass(frozen=True)
class RewardSpec:
    """One registered reward function.

    Attributes:
        func: the reward, TRL's ``reward_funcs`` form (``completions`` and dataset columns as keyword
            arguments, one float per completion); its ``__name__`` is the registry name, which TRL logs
            (``rewards/<name>/mean``) and :class:`~trl_rarl.trainer.RARLTrainer` selects by.
        options: ``options(args, judge) -> dict``: the keyword arguments the config gives it.
    """

    func: Callable[..., list[float]]
    options: Callable[[Any, Callable | None], dict]

    @property
    def name(self) -> str:
        """The registry name (``func.__name__``)."""
        return self.func.__name__


REWARD_FUNCS: dict[str, RewardSpec] = {}
"""Registered reward functions by name (:func:`register_reward`); ``RARLConfig.reward_funcs`` picks from it."""


def _no_options(args, judge) -> dict:
    return {}


def register_reward(func: Callable | None = None, *, options: Callable[[Any, Callable | None], dict] | None = None):
    """Register a reward function under its ``__name__`` (usable as a decorator, with or without arguments).

    Args:
        func: the reward function (TRL ``reward_funcs`` form).
        options: ``options(args, judge) -> dict`` of keyword arguments from a
            :class:`~trl_rarl.config.RARLConfig` and the judge; default: none.

    Returns:
        ``func`` unchanged (or the decorator).

    Raises:
        ValueError: a name already registered to another function, or a callable without a usable ``__name__``.
    """

    def register(f: Callable) -> Callable:
        name = getattr(f, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"reward function {f!r} needs a __name__ (its registry and logging name)")
        if name in REWARD_FUNCS and REWARD_FUNCS[name].func is not f:
            raise ValueError(f"a reward named {name!r} is already registered ({REWARD_FUNCS[name].func!r})")
        REWARD_FUNCS[name] = RewardSpec(f, options or _no_options)
        return f

    return register(func) if func is not None else register


def _tool_options(args, judge) -> dict:
    return {"conditioning": args.tool_reward_conditioning, "warm_start_steps": args.warm_start_steps, "judge": judge}


register_reward(format_reward, options=lambda args, judge: {"mode": args.prompt_mode})
register_reward(accuracy_reward, options=lambda args, judge: {"judge": judge})
register_reward(tool_count_reward, options=_tool_options)
register_reward(tool_iou_reward, options=_tool_options)
register_reward(grounding_reward, options=lambda args, judge: {**_tool_options(args, judge), "tau": args.grounding_tau})

RARL_REWARDS: tuple[str, ...] = ("format_reward", "accuracy_reward", "tool_count_reward", "tool_iou_reward")
"""The RARL reward (method.md section 4): ``R_format + R_acc + R_tool``, ``R_tool`` split into count and IoU
(``grounding_reward`` in place of ``tool_iou_reward`` for method.md section 5)."""

GRPO_REWARDS: tuple[str, ...] = ("format_reward", "accuracy_reward")
"""Vanilla GRPO (method.md section 4): accuracy + format."""

WARM_START_REWARDS: tuple[str, ...] = ("format_reward", "tool_count_reward")
"""Rewards active during the warm start (method.md section 4: "only basic tool-usage rewards (format + tool
count)"); the others get weight 0 then."""


def make_reward_funcs(names: Sequence[str], args, judge: Callable | None = None) -> list[Callable]:
    """The registered rewards ``names``, in that order, bound to their config options.

    Args:
        names: registry names (:data:`REWARD_FUNCS`).
        args: the config the options are read from (a :class:`~trl_rarl.config.RARLConfig`, or anything with
            the attributes the named rewards read: ``prompt_mode``; for the tool rewards
            ``tool_reward_conditioning`` and ``warm_start_steps``; for ``grounding_reward`` ``grounding_tau``).
        judge: ``judge(question, reference, prediction) -> bool`` for open answers, or ``None``.

    Returns:
        ``functools.partial`` objects; TRL names each after the wrapped function, i.e. its registry name.

    Raises:
        ValueError: a name that is not registered (the message lists the registered ones).
    """
    unknown = [n for n in names if n not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward function(s) {unknown}; registered: {sorted(REWARD_FUNCS)}")
    return [functools.partial(REWARD_FUNCS[n].func, **REWARD_FUNCS[n].options(args, judge)) for n in names]


def rarl_reward_funcs(args, judge: Callable | None = None) -> list[Callable]:
    """The reward functions a :class:`~trl_rarl.config.RARLConfig` names in ``args.reward_funcs`` (default
    :data:`RARL_REWARDS`), in that order, which is the order of ``args.reward_weights``."""
    return make_reward_funcs(getattr(args, "reward_funcs", None) or RARL_REWARDS, args, judge)


def grpo_reward_funcs(mode: str = "think", judge: Callable | None = None) -> list[Callable]:
    """Vanilla GRPO rewards (method.md section 4): :data:`GRPO_REWARDS` with the prompt mode ``mode``."""
    return make_reward_funcs(GRPO_REWARDS, types.SimpleNamespace(prompt_mode=mode), judge)


def make_llm_judge(client: Any = None, settings: Any = None) -> Callable[[str, str, str], bool]:
    """The LLM judge for open-ended accuracy (Panel Understanding, method.md section 3): the very judge
    the evaluation uses (:class:`ai4va_fg_dataset.core.llm.Judge`: same prompt, verdict parser,
    retries with backoff, disk cache and settings).

    Args:
        client: optional model to ask instead of the one the settings name (anything with
            ``generate(prompt, images) -> str``; its verdicts are not disk-cached).
        settings: a :class:`ai4va_fg_dataset.core.llm.JudgeSettings`; ``None``: the evaluation's
            ``AI4VA_FG_JUDGE_*`` environment (:meth:`JudgeSettings.from_env`).

    Returns:
        ``judge(question, reference, prediction) -> bool``; it raises
        :class:`ai4va_fg_dataset.core.llm.JudgeError` when no well-formed verdict came back after the
        retries, which :func:`accuracy_score` logs and scores 0. Verdicts are memoised and cached on
        disk (the accuracy reward and both correctness-conditioned tool rewards judge the same
        completion: one request serves all three).
    """
    from ai4va_fg_dataset.core.llm import Judge, JudgeSettings

    return Judge(settings if settings is not None else JudgeSettings.from_env(), client=client)
