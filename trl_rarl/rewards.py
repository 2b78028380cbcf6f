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
environment without a page) gives a zero reward, never an exception; :func:`rarl_reward_funcs` builds
the configured list.

Robustness guarantees (one bad rollout must not kill a training run):

* tool calls are read by :func:`ai4va_fg_dataset.core.zoom_tool.parse_tool_calls`, the parser and
  validator the zoom tool, the environment and the eval agent use: one verdict on what is malformed;
  it is linear in the completion length and bounded (see its module docstring);
* every reward is computed in linear time (no regex rescans from each unclosed tag) and is a finite
  float; a completion that still makes a reward computation raise scores 0 for that term, is logged
  (warning) and counted in :data:`REWARD_ERRORS`;
* the LLM judge of :func:`make_llm_judge` only counts a reply that is exactly ``yes`` or ``no``.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from ai4va_fg_dataset.core import geometry
from ai4va_fg_dataset.core.prompts import CHOICE_LETTERS
from ai4va_fg_dataset.core.tags import tag_contents
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


def _answer_spans(text: str) -> list[str]:
    """The texts of ``<answer>...</answer>`` pairs, as ``re.findall(r"<answer>(.*?)</answer>", text, re.S)``
    gives them, in one linear scan (the regex rescans from every unclosed tag: quadratic). Exact-case
    tags; the scan is :func:`ai4va_fg_dataset.core.tags.tag_contents`, the one the eval's answer extraction uses."""
    return tag_contents(text, "answer")


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


def extract_answer(completion: Any) -> str | None:
    """Text inside the last ``<answer></answer>`` of the last assistant turn, stripped; ``None`` if absent.

    Linear in the completion length.
    """
    found = _answer_spans(assistant_turns(completion)[-1])
    return found[-1].strip() if found else None


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


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def choice_letter(prediction: str, choices: Sequence[str] | None) -> str | None:
    """The option letter a predicted answer names: ``"B"``, ``"(B)"``, ``"B. text"``, or the option text itself.

    Returns ``None`` when no option can be identified.
    """
    pred = prediction.strip()
    n = len(choices) if choices else len(CHOICE_LETTERS)
    letters = CHOICE_LETTERS[:n]
    m = re.match(r"^\(?\s*([A-Ha-h])\s*(?:[\).:]|$|\s)", pred)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    if choices:
        norm = _normalise(pred)
        for letter, text in zip(letters, choices):
            if norm and norm == _normalise(text):
                return letter
    return None


def parse_number(text: str) -> float | None:
    """The first number in ``text`` (``"3"``, ``"3.0"``, ``"three"`` is not parsed); ``None`` if there is none."""
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return float(m.group(0)) if m else None


def accuracy_score(
    prediction: str | None,
    answer: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    question: str | None = None,
    judge: Callable[[str, str, str], float] | None = None,
) -> float:
    """1.0 if ``prediction`` is correct, else 0.0 (method.md section 3 metrics).

    * ``choice``: the predicted option letter equals ``answer``;
    * ``number``: the first number in the prediction equals ``answer`` (Character Counting);
    * ``open``: ``judge(question, answer, prediction)`` (an LLM judge, a score in [0, 1]) when given,
      else normalised exact match or the reference contained in the prediction.
    A missing prediction scores 0; a judge error scores 0.
    """
    if prediction is None or not prediction.strip():
        return 0.0
    if answer_type == "choice":
        return float(choice_letter(prediction, choices) == str(answer).strip().upper())
    if answer_type == "number":
        pred, ref = parse_number(prediction), parse_number(str(answer))
        return float(pred is not None and ref is not None and pred == ref)
    if judge is not None:
        try:
            score = float(judge(question or "", str(answer), prediction))
        except Exception as exc:  # noqa: BLE001  (a judge outage must not kill the run: score 0, logged)
            logger.warning("LLM judge failed (%s: %s); accuracy scored 0", type(exc).__name__, exc)
            return 0.0
        if not math.isfinite(score):  # min(1, nan) is 1: a NaN must not score as correct
            logger.warning("LLM judge returned %r; accuracy scored 0", score)
            return 0.0
        return max(0.0, min(1.0, score))
    ref, pred = _normalise(answer), _normalise(prediction)
    return float(bool(ref) and (pred == ref or ref in pred))


def accuracy_reward(
    completions: list,
    answer: list[str],
    answer_type: list[str],
    choices: list | None = None,
    question: list | None = None,
    judge: Callable[[str, str, str], float] | None = None,
    **kwargs,
) -> list[float]:
    """R_acc (method.md section 4): :func:`accuracy_score` of each completion's final ``<answer>``.

    Never raises for a completion: one whose scoring fails scores 0 (logged, counted in :data:`REWARD_ERRORS`).
    """
    n = len(completions)
    choices = choices if choices is not None else [None] * n
    question = question if question is not None else [None] * n
    return [
        _guarded("accuracy_reward", 0.0, lambda c, a, t, ch, q: accuracy_score(extract_answer(c), a, t, ch, q, judge),
                 c, a, t, ch, q)
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


def rarl_reward_funcs(args, judge: Callable | None = None) -> list[Callable]:
    """The RARL reward functions configured by a :class:`~trl_rarl.config.RARLConfig`, in the order of
    ``args.reward_weights``: ``[format_reward, accuracy_reward, tool_count_reward, tool_iou_reward |
    grounding_reward]`` (``functools.partial`` objects; TRL logs each under the wrapped function's name)."""
    common = {"conditioning": args.tool_reward_conditioning, "warm_start_steps": args.warm_start_steps, "judge": judge}
    partial = functools.partial
    iou = (
        partial(grounding_reward, tau=args.grounding_tau, **common)
        if args.grounding_reward
        else partial(tool_iou_reward, **common)
    )
    return [
        partial(format_reward, mode=args.prompt_mode),
        partial(accuracy_reward, judge=judge),
        partial(tool_count_reward, **common),
        iou,
    ]


def grpo_reward_funcs(mode: str = "think", judge: Callable | None = None) -> list[Callable]:
    """Vanilla GRPO rewards (method.md section 4): ``[format, accuracy]``."""
    return [functools.partial(format_reward, mode=mode), functools.partial(accuracy_reward, judge=judge)]


JUDGE_PROMPT = (
    "You grade answers to a question about a comic panel.\n"
    "Question: {question}\nReference answer: {reference}\nCandidate answer: {prediction}\n"
    "Is the candidate answer correct, i.e. does it agree with the reference in meaning? Reply with one word: yes or no."
)


JUDGE_REPLY = re.compile(r"\s*(yes|no)\s*[.!]?\s*", re.IGNORECASE)
"""The accepted replies of :func:`make_llm_judge`'s judge (matched against the whole reply)."""


def make_llm_judge(client) -> Callable[[str, str, str], float]:
    """An LLM judge for open-ended accuracy (Panel Understanding, method.md section 3).

    Args:
        client: anything with ``generate(prompt, images) -> str`` (``ai4va_fg_dataset.core.llm.make_client``).

    Returns:
        ``judge(question, reference, prediction)``: 1.0 for the reply ``yes``, 0.0 for ``no``; the only
        accepted replies are :data:`JUDGE_REPLY`: the one word, any case, surrounding whitespace and
        one final ``.`` or ``!`` allowed. Anything else ("Yesterday...", "yes and no", an empty or
        non-text reply) raises :class:`ValueError`. Verdicts are memoised (the accuracy reward and
        both correctness-conditioned tool rewards judge the same completion: one client call serves
        all three). Errors (client or reply) are not cached; they propagate to :func:`accuracy_score`,
        which logs them and scores 0.
    """

    @functools.lru_cache(maxsize=65536)
    def judge(question: str, reference: str, prediction: str) -> float:
        reply = client.generate(JUDGE_PROMPT.format(question=question, reference=reference, prediction=prediction), [])
        m = JUDGE_REPLY.fullmatch(reply) if isinstance(reply, str) else None
        if m is None:
            shown = repr(reply[:80]) if isinstance(reply, str) else type(reply).__name__
            raise ValueError(f"judge reply {shown} is not 'yes' or 'no'")
        return float(m.group(1).lower() == "yes")

    return judge
