"""Answer extraction for AI4VA-FG model outputs (method.md section 3: "accuracy per task (exact
choice letter / number)").

Models answer in many shapes: ``<answer>B</answer>``, ``B``, ``(B)``, ``B. running``,
``The answer is B``, the option text itself, ``<answer>3 times</answer>``, ``three``. These functions
turn a completion into a choice letter, an integer or a free-text answer, or ``None`` when nothing
can be read: an unparseable answer scores 0 and is counted in the ``parse_failure`` metric.

Rules, in order:

1. ``<think>...</think>`` blocks, ``<tool_call>...</tool_call>`` blocks and
   ``<tool_response>...</tool_response>`` blocks are removed (they hold reasoning and crops, not the
   answer); an unclosed ``<think>`` at the end (truncated reasoning) is removed too.
2. If ``<answer>...</answer>`` is present, only the **last** one is read, leniently (a bare letter
   or a number inside the tags is the answer). An unclosed ``<answer>`` at the end counts.
3. Otherwise the whole remaining text is read strictly: only explicit patterns count (``(B)``,
   ``B.``/``B)`` at the start, ``answer is B``, ``Answer: B``, a line that is just ``B``), so the
   article "A" in "A man runs" is not read as option A.
4. For choices, the exact option text (case- and punctuation-insensitive) also counts, and so
   does an answer that contains exactly one option text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .prompts import CHOICE_LETTERS
from .tags import TagBlock, tag_blocks

# Blocks are found by ai4va_fg_dataset.core.tags.tag_blocks, one forward scan: the regexes it replaces,
# r"<think>.*?</think>", r"<(tool_call|tool_response)>.*?</\1>" and r"<answer>(.*?)</answer>" (DOTALL,
# IGNORECASE), rescan the rest of the text from every unclosed tag (quadratic). The two patterns
# below are linear: their first match runs to the end of the text.
_THINK_OPEN = re.compile(r"<think>.*\Z", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>(.*)\Z", re.DOTALL | re.IGNORECASE)

NUMBER_WORDS = {
    "zero": 0, "none": 0, "no": 0, "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20,
}
"""English number words read by :func:`extract_number` (counting answers stay small)."""


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
    """The part of a completion that holds the answer.

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
    return re.sub(r"[^0-9a-z]+", " ", s.lower()).strip()


def _letter_patterns(letters: str) -> tuple[re.Pattern, ...]:
    L = f"[{letters}]"
    return (
        re.compile(rf"^\(?({L})\)?[.:)]?$"),  # the whole span is the letter: "B", "(B)", "B.", "B)"
        re.compile(rf"\(({L})\)"),  # "(B)" anywhere
        re.compile(rf"^({L})[.:)]\s"),  # "B. running" / "B) running" / "B: running"
        re.compile(rf"(?i:answer|option|choice)(?:\s+(?i:is))?\s*[:=]?\s*\(?({L})\b(?![-'])"),
        re.compile(rf"(?m)^\s*\(?({L})\)?[.:)]?\s*$"),  # a line that is just the letter
    )


def extract_choice(text: str | None, choices: Sequence[str]) -> str | None:
    """Read a choice letter (``"A"``..) from a completion.

    Args:
        text: the model output.
        choices: the option texts of the sample (``A`` is ``choices[0]``); their number decides
            which letters are valid.

    Returns:
        The upper-case letter of the chosen option, or ``None`` when no valid option can be read
        (see the module docstring for the rules; a letter outside the options is not valid).
    """
    if not choices:
        return None
    letters = CHOICE_LETTERS[: len(choices)]
    span, tagged = answer_span(text)
    if not span:
        return None
    candidates = [span.strip().strip("*`\"' ")]
    for pattern in _letter_patterns(letters):
        for cand in candidates:
            m = pattern.search(cand)
            if m:
                return m.group(1)
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


def extract_number(text: str | None) -> int | None:
    """Read a non-negative integer (a count) from a completion.

    Inside ``<answer>`` tags the first integer (or number word) is the answer; without tags the
    **last** integer or number word of the text is ("... so the character appears 3 times").
    Decimals are not counts: ``"2.5"`` is unparseable.

    Returns:
        The integer, or ``None`` when there is none.
    """
    span, tagged = answer_span(text)
    if not span:
        return None
    tokens = re.findall(r"\d+(?:[.,]\d+)?|[A-Za-z]+", span)
    values: list[int | None] = []
    for tok in tokens:
        if tok[0].isdigit():
            values.append(int(tok) if tok.isdigit() else None)
        elif tok.lower() in NUMBER_WORDS and (tagged or tok.lower() not in {"no", "none", "once"}):
            values.append(NUMBER_WORDS[tok.lower()])
    if not values:
        return None
    value = values[0] if tagged else values[-1]
    return value


def extract_open(text: str | None) -> str | None:
    """The free-text answer of an open-ended (Panel Understanding) completion, or ``None`` if empty."""
    span, _ = answer_span(text)
    span = span.strip()
    return span or None
