"""The one scorer of AI4VA-FG answers: evaluation metric and training reward (method.md sections 3-4).

lmms-eval's ``process_results`` (:mod:`lmms_eval_tasks.scoring`), the TRL accuracy reward
(:func:`trl_rarl.rewards.accuracy_reward`) and SFT-R filtering (``recipes/distill_sft_r.py``) all call
:func:`score_answer`, so a completion the model is rewarded for is a completion the benchmark counts
as correct, and the reverse (method.md section 3: "accuracy per task (exact choice letter / number);
Panel Understanding by LLM judge"). ``tests/test_scoring_table.py`` asserts it on a shared table.

Models answer in many shapes: ``<answer>B</answer>``, ``B``, ``(B)``, ``B. running``,
``The answer is B``, the option text itself, ``<answer>3 times</answer>``, ``three``, ``3.0``.

Rules, in order:

1. ``<think>...</think>``, ``<tool_call>...</tool_call>`` and ``<tool_response>...</tool_response>``
   blocks are removed (reasoning and crops, not the answer); an unclosed ``<think>`` at the end
   (truncated reasoning) is removed too. Tags match in any case.
2. If ``<answer>...</answer>`` is present, only the **last** one is read, leniently (a bare letter
   or a number inside the tags is the answer). An unclosed ``<answer>`` at the end counts. A
   conversational completion is read as its assistant turns joined by newlines (as the eval's zoom
   agent records them), so the last answer of the whole trajectory wins.
3. Otherwise the whole remaining text is read strictly: only explicit patterns count (``(B)``,
   ``B.``/``B)`` at the start, ``answer is B``, ``Answer: B``, a line that is just ``B``), so the
   article in "A man runs" is not read as option A.
4. **Choices** (``answer_type="choice"``, key = the option letter): a span that is just one letter
   (``B``, ``b``, ``(B)``, ``B.``) is that letter; the exact option text (case, punctuation and
   spacing ignored) counts; so does a span that contains exactly one option text as whole words
   (or several, when the longest contains all the others). A letter outside the options is no
   answer. "a man running" is option A only when it is option A's text.
5. **Numbers** (``answer_type="number"``, Character Counting, key = an integer): digits with an
   optional decimal part (``3``, ``3.0``, ``2.5``) or an English number word (``three``, ``twice``;
   ``no``/``none``/``once`` only inside answer tags). Inside tags the first number is the answer,
   without tags the last one ("... so she appears 3 times"). ``3.0`` equals ``3``; ``2.5`` is read and
   is wrong (absolute error 0.5); a number of more than :data:`MAX_NUMBER_DIGITS` digits is no answer.
6. **Open answers** (``answer_type="open"``, Panel Understanding, key = the reference answer): with a
   judge, its verdict; without one, a strict exact match after SQuAD's answer normalisation
   (:func:`normalize_open`: lower case, punctuation and the articles a/an/the removed, spaces
   collapsed). Substring matches do not count: a long answer that mentions the reference is not
   rewarded.
7. An answer that cannot be read scores 0 (reason :data:`UNPARSEABLE`, the ``parse_failure`` metric);
   a judge that raises, returns ``None``, or returns anything but a yes/no verdict scores 0 (reason
   :data:`JUDGE_FAILURE`, the ``judge_failure`` metric), logged, never raised.

The judge is any callable ``judge(question, reference, prediction)`` whose result is a ``bool`` (or
0/1, or an object with a ``correct`` attribute such as :class:`lmms_eval_tasks.judge.Verdict`); an
object without ``__call__`` but with a ``judge`` method of that signature works too. Training and
evaluation get the same judge from ``ai4va_fg_dataset.core.llm``.

Every function here is linear in the completion length (tag blocks are found by
:func:`ai4va_fg_dataset.core.tags.tag_blocks`) and never raises on model output; only bad dataset
rows (an unknown ``answer_type``, a key that is not an option letter or an integer) raise
``ValueError``.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .prompts import CHOICE_LETTERS
from .tags import TagBlock, tag_blocks

logger = logging.getLogger(__name__)

ANSWER_TYPES = ("choice", "number", "open")
"""The ``answer_type`` values of the dataset schema, each with its rule above."""

CORRECT, WRONG, UNPARSEABLE, JUDGE_FAILURE = "correct", "wrong", "unparseable", "judge_failure"
"""The ``reason`` of a :class:`ScoreResult`."""

MAX_NUMBER_DIGITS = 18
"""Longest digit run read as a count (Python refuses ``int`` of 4300+ digits; a count is small)."""

# Blocks are found by ai4va_fg_dataset.core.tags.tag_blocks, one forward scan: the regexes it replaces,
# r"<think>.*?</think>", r"<(tool_call|tool_response)>.*?</\1>" and r"<answer>(.*?)</answer>" (DOTALL,
# IGNORECASE), rescan the rest of the text from every unclosed tag (quadratic). The two patterns
# below are linear: their first match runs to the end of the text.
_THINK_OPEN = re.compile(r"<think>.*\Z", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>(.*)\Z", re.DOTALL | re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"(?:(?<![\w.])-)?\d+(?:\.\d+)?|[A-Za-z]+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")

NUMBER_WORDS = {
    "zero": 0, "none": 0, "no": 0, "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20,
}
"""English number words read by :func:`extract_number` (counting answers stay small)."""

_TAGGED_ONLY_WORDS = frozenset({"no", "none", "once"})
"""Number words that are prose outside answer tags ("no idea", "none of them", "once upon")."""


@dataclass(frozen=True)
class ScoreResult:
    """The score of one completion.

    Attributes:
        score: 1.0 correct, 0.0 otherwise (the metric's ``accuracy`` and the reward ``R_acc``).
        extracted: what was read: the option letter (``"B"``), the number (``int`` when whole,
            else ``float``), the free-text answer, or ``None`` when nothing could be read.
        reason: :data:`CORRECT`, :data:`WRONG`, :data:`UNPARSEABLE` or :data:`JUDGE_FAILURE`.
        detail: for a judge failure, why (the exception or the bad verdict); else ``""``.
    """

    score: float
    extracted: Any
    reason: str
    detail: str = ""

    @property
    def parse_failure(self) -> bool:
        """No answer could be read (the ``parse_failure`` metric)."""
        return self.reason == UNPARSEABLE

    @property
    def judge_failure(self) -> bool:
        """The judge gave no verdict (the ``judge_failure`` metric)."""
        return self.reason == JUDGE_FAILURE


# ---------------------------------------------------------------------------------------- extraction


def _remove_blocks(text: str, blocks: list[TagBlock]) -> str:
    """``text`` with each block replaced by one space (as ``re.sub(pattern, " ", text)`` does)."""
    if not blocks:
        return text
    parts, pos = [], 0
    for block in blocks:
        parts.append(text[pos:block.start])
        pos = block.end
    parts.append(text[pos:])
    return " ".join(parts)


def strip_reasoning(text: str) -> str:
    """``text`` without ``<think>``, ``<tool_call>`` and ``<tool_response>`` blocks (rule 1).

    Each block becomes one space; an unclosed ``<think>`` left after that removes the rest of the
    text. Tags match in any case; linear in ``len(text)``.
    """
    text = _remove_blocks(text, tag_blocks(text, "think", ignore_case=True))
    text = _remove_blocks(text, tag_blocks(text, ("tool_call", "tool_response"), ignore_case=True,
                                           same_spelling=True))
    return _THINK_OPEN.sub(" ", text)


def answer_span(text: str | None) -> tuple[str, bool]:
    """The part of a completion that holds the answer (rules 1-2).

    Returns:
        ``(span, tagged)``: the content of the last ``<answer>`` tag and ``True``, or the
        completion without reasoning blocks and ``False`` when there is no answer tag. ``None`` or
        non-text input gives ``("", False)``. Linear in the completion length.
    """
    if not isinstance(text, str):
        return "", False
    cleaned = strip_reasoning(text)
    tags = tag_blocks(cleaned, "answer", ignore_case=True)
    if tags:
        return cleaned[tags[-1].inner_start:tags[-1].inner_end].strip(), True
    open_tag = _ANSWER_OPEN.search(cleaned)
    if open_tag:
        return open_tag.group(1).strip(), True
    return cleaned.strip(), False


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", unicodedata.normalize("NFKC", s).lower()).strip()


def _letter_patterns(letters: str) -> tuple[re.Pattern, ...]:
    L = f"[{letters}]"
    return (
        # the whole span is the letter, any case: "B", "b", "(B)", "B.", "B)"
        re.compile(rf"^\(?({L})\)?[.:)]?$", re.IGNORECASE),
        re.compile(rf"\(({L})\)"),  # "(B)" anywhere
        re.compile(rf"^({L})[.:)]\s"),  # "B. running" / "B) running" / "B: running"
        re.compile(rf"(?i:answer|option|choice)(?:\s+(?i:is))?\s*[:=]?\s*\(?({L})\b(?![-'])"),
        re.compile(rf"(?m)^\s*\(?({L})\)?[.:)]?\s*$"),  # a line that is just the letter
    )


def extract_choice(text: str | None, choices: Sequence[str]) -> str | None:
    """Read a choice letter (``"A"``..) from a completion (rules 1-4).

    Args:
        text: the model output.
        choices: the option texts of the sample (``A`` is ``choices[0]``); their number decides
            which letters are valid.

    Returns:
        The upper-case letter of the chosen option, or ``None`` when no valid option can be read
        (a letter outside the options is not valid).
    """
    choices = [str(c) for c in (choices if choices is not None else [])]
    if not choices:
        return None
    letters = CHOICE_LETTERS[: len(choices)]
    span, tagged = answer_span(text)
    if not span:
        return None
    candidate = span.strip().strip("*`\"' ")
    for pattern in _letter_patterns(letters):
        m = pattern.search(candidate)
        if m:
            return m.group(1).upper()
    if tagged:
        # Inside <answer> tags: a single standalone valid letter is the answer ("B is correct").
        found = set(re.findall(rf"\b([{letters}])\b", span))
        if len(found) == 1:
            letter = found.pop()
            # Reject the English article: "A man runs" has a standalone "A" followed by a word.
            if not (letter == "A" and re.search(r"\bA\s+[a-z]", span)):
                return letter
    # The option text itself.
    norm_span = _norm(span)
    norm_choices = [_norm(c) for c in choices]
    for i, c in enumerate(norm_choices):
        if c and norm_span == c:
            return letters[i]
    contained = [i for i, c in enumerate(norm_choices) if c and re.search(rf"\b{re.escape(c)}\b", norm_span)]
    if len(contained) == 1:
        return letters[contained[0]]
    if len(contained) > 1:
        # "A running man, not a sitting man": keep the longest option if it contains the others.
        longest = max(contained, key=lambda i: len(norm_choices[i]))
        if all(norm_choices[i] in norm_choices[longest] for i in contained):
            return letters[longest]
    return None


def _number_value(token: str) -> int | float | None:
    """``"3"`` -> 3, ``"3.0"`` -> 3, ``"2.5"`` -> 2.5; ``None`` past :data:`MAX_NUMBER_DIGITS` digits."""
    digits = token.lstrip("-").split(".")
    if len(digits[0]) > MAX_NUMBER_DIGITS or (len(digits) > 1 and len(digits[1]) > MAX_NUMBER_DIGITS):
        return None
    value = float(token)
    return int(value) if value.is_integer() else value


def extract_number(text: str | None) -> int | float | None:
    """Read a number (a count) from a completion (rules 1-3 and 5).

    Inside ``<answer>`` tags the first number (digits or an English number word) is the answer;
    without tags the **last** one is ("... so the character appears 3 times").

    Returns:
        An ``int`` for a whole number (``"3.0"`` gives 3), a ``float`` otherwise (``"2.5"``), or
        ``None`` when there is no readable number.
    """
    span, tagged = answer_span(text)
    if not span:
        return None
    values: list[int | float | None] = []
    for tok in _NUMBER_TOKEN.findall(span):
        if tok[-1].isdigit():
            values.append(_number_value(tok))
        elif tok.lower() in NUMBER_WORDS and (tagged or tok.lower() not in _TAGGED_ONLY_WORDS):
            values.append(NUMBER_WORDS[tok.lower()])
    if not values:
        return None
    return values[0] if tagged else values[-1]


def extract_open(text: str | None) -> str | None:
    """The free-text answer of an open-ended (Panel Understanding) completion, or ``None`` if empty."""
    span, _ = answer_span(text)
    span = span.strip()
    return span or None


def normalize_open(text: str) -> str:
    """SQuAD's answer normalisation (Rajpurkar et al. 2016, ``normalize_answer`` of the official
    evaluation script), after Unicode NFKC: lower case, punctuation removed, the articles
    a/an/the removed, whitespace collapsed. ``"The red ball."`` -> ``"red ball"``."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------- judge


JudgeLike = Callable[[str, str, str], Any]
"""``judge(question, reference, prediction) -> bool`` (see the module docstring for what else counts)."""


def _verdict(value: Any) -> bool | None:
    """A judge's result as ``True``/``False``, or ``None`` when it is no yes/no verdict."""
    value = getattr(value, "correct", value)
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if number in (0.0, 1.0):  # NaN, 0.7, inf are not verdicts
            return number == 1.0
    return None


def ask_judge(judge: Any, question: str, reference: str, prediction: str) -> tuple[bool | None, str]:
    """Ask ``judge`` whether ``prediction`` answers ``question`` like ``reference`` (rule 6-7).

    Returns:
        ``(verdict, detail)``: ``True``/``False`` and ``""``, or ``None`` and why there is no
        verdict (the judge raised, returned ``None``, or returned something that is not yes/no).
        Never raises; a failure is logged as a warning.
    """
    ask = judge if callable(judge) else getattr(judge, "judge", None)
    if not callable(ask):
        raise TypeError(f"judge {type(judge).__name__} is neither callable nor has a judge() method")
    try:
        value = ask(question, reference, prediction)
    except Exception as exc:  # noqa: BLE001  (a judge outage must not kill a run: score 0, logged)
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        logger.warning("LLM judge failed (%s); accuracy scored 0", detail)
        return None, detail
    verdict = _verdict(value)
    if verdict is None:
        error = getattr(value, "error", None)
        detail = str(error)[:200] if error else f"no yes/no verdict: {str(value)[:80]!r}"
        logger.warning("LLM judge gave %s; accuracy scored 0", detail)
    return verdict, ("" if verdict is not None else detail)


# ------------------------------------------------------------------------------------------- score


def _integer_key(key: Any) -> int:
    try:
        value = float(str(key).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"counting answer {key!r} is not an integer")
    return int(value)


def score_answer(
    completion: str | None,
    *,
    answer_type: str,
    key: Any,
    choices: Sequence[str] | None = None,
    question: str | None = None,
    judge: JudgeLike | Any | None = None,
) -> ScoreResult:
    """Score one completion against the dataset's answer (the rules of the module docstring).

    Args:
        completion: the model output as text (a conversational completion joined first, e.g. by
            :func:`trl_rarl.rewards.completion_text`; ``None`` reads as empty).
        answer_type: ``"choice"``, ``"number"`` or ``"open"`` (the row's ``answer_type``).
        key: the row's ``answer``: an option letter, an integer (``"3"``), or the reference text.
        choices: the row's option texts (``choice`` only; ``A`` is ``choices[0]``).
        question: the row's question (given to the judge).
        judge: for ``open``: ``judge(question, reference, prediction) -> bool``; ``None`` uses the
            normalised exact match.

    Returns:
        A :class:`ScoreResult` (score 1.0 or 0.0, what was read, why).

    Raises:
        ValueError: an unknown ``answer_type``, a ``choice`` row without options or whose key is not
            one of its option letters, a ``number`` row whose key is not an integer.
        TypeError: a judge that is neither callable nor has a ``judge`` method.
    """
    if answer_type == "choice":
        options = [str(c) for c in (choices if choices is not None else [])]
        letters = CHOICE_LETTERS[: len(options)]
        gold = str(key).strip().upper()
        if not options or len(gold) != 1 or gold not in letters:
            raise ValueError(f"choice answer {key!r} is not one of the option letters {letters!r}")
        letter = extract_choice(completion, options)
        if letter is None:
            return ScoreResult(0.0, None, UNPARSEABLE)
        return ScoreResult(float(letter == gold), letter, CORRECT if letter == gold else WRONG)
    if answer_type == "number":
        gold_n = _integer_key(key)
        value = extract_number(completion)
        if value is None:
            return ScoreResult(0.0, None, UNPARSEABLE)
        return ScoreResult(float(value == gold_n), value, CORRECT if value == gold_n else WRONG)
    if answer_type == "open":
        reference = str(key).strip()
        prediction = extract_open(completion)
        if prediction is None:
            return ScoreResult(0.0, None, UNPARSEABLE)
        if judge is None:
            ok = bool(normalize_open(reference)) and normalize_open(prediction) == normalize_open(reference)
            return ScoreResult(float(ok), prediction, CORRECT if ok else WRONG)
        verdict, detail = ask_judge(judge, str(question or ""), reference, prediction)
        if verdict is None:
            return ScoreResult(0.0, prediction, JUDGE_FAILURE, detail)
        return ScoreResult(float(verdict), prediction, CORRECT if verdict else WRONG)
    raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {ANSWER_TYPES}")
