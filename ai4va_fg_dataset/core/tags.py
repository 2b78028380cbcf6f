"""Tag blocks (``<answer>...</answer>``, ``<think>...</think>``, ``<tool_call>...</tool_call>``) of a
model output, found in linear time.

A regex such as ``<answer>(.*?)</answer>`` is quadratic on hostile output: from every opening tag
that has no closing tag after it, the lazy ``.*?`` scans to the end of the text before the search
moves on, so 100 kB of repeated ``<answer>`` took 13 s in the eval's answer extraction. :func:`tag_blocks`
finds exactly the blocks that regex finds (``re.finditer``: leftmost first, each opening tag paired
with the first matching closing tag after it, blocks never overlap) in one forward scan, like a
``str.find`` loop (each tag is looked for with a small regex search, so that case is ignored exactly
as the replaced regex ignored it): once the search for a closing tag fails, no later opening tag of
that name can be closed, and the scan stops looking for them.

Used by the eval's answer extraction (``ai4va_fg_dataset.core.scoring``: tags in any case) and the RARL
rewards (``trl_rarl.rewards``: exact ``<answer>`` tags), so both read the same spans. The tool-call
parser (:func:`ai4va_fg_dataset.core.zoom_tool.parse_tool_calls`) keeps its own bounded scan, which also
reports unclosed and oversized blocks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["TagBlock", "tag_blocks", "tag_contents"]


class TagBlock(NamedTuple):
    """One ``<name>...</name>`` block of a text, as offsets into that text.

    Attributes:
        name: the tag name as given to :func:`tag_blocks` (not as spelled in the text).
        start: offset of the opening tag's ``<``.
        inner_start: offset just after the opening tag (the content's first character).
        inner_end: offset of the closing tag's ``<`` (just after the content).
        end: offset just after the closing tag.
    """

    name: str
    start: int
    inner_start: int
    inner_end: int
    end: int


@functools.lru_cache(maxsize=64)
def _opening(names: tuple[str, ...], ignore_case: bool) -> re.Pattern:
    """An opening tag of one of ``names``; group ``i + 1`` holds ``names[i]`` as spelled in the text."""
    alternatives = "|".join(f"({re.escape(name)})" for name in names)
    return re.compile(rf"<(?:{alternatives})>", re.IGNORECASE if ignore_case else 0)


@functools.lru_cache(maxsize=64)
def _closing(name: str, ignore_case: bool) -> re.Pattern:
    """The closing tag of ``name``; group 1 holds the name as spelled in the text."""
    return re.compile(rf"</({re.escape(name)})>", re.IGNORECASE if ignore_case else 0)


def tag_blocks(text: str, names: str | Iterable[str], *, ignore_case: bool = False,
               same_spelling: bool = False) -> list[TagBlock]:
    """The ``<name>...</name>`` blocks of ``text``, in order, in time linear in ``len(text)``.

    With one name, the result is what ``re.finditer(r"<name>(.*?)</name>", text, re.DOTALL)`` finds
    (plus ``re.IGNORECASE`` with ``ignore_case``). With several names it is what the alternation
    ``<a>.*?</a>|<b>.*?</b>`` finds, or, with ``same_spelling``, what ``<(a|b)>.*?</\\1>`` finds:
    the closing tag must then be spelled as the opening one up to case (``str.lower``), as the
    backreference asks (``<TOOL_CALL>`` closes with ``</tool_call>``).

    The scan moves forward only: find the next opening tag, then the first matching closing tag
    after it, go on after that. A search for a closing tag that fails (a truncated output) is not
    repeated: no later opening tag of that name (and spelling) can be closed either, so they are
    passed over, and the scan ends when no name is left.

    Args:
        text: the model output (anything else gives no block).
        names: one tag name or several; a name is non-empty and holds no ``<``, ``>`` or ``/``.
        ignore_case: tags match in any case, with Python ``re``'s case rules (``<ANSWER>`` is an
            answer tag).
        same_spelling: see above; only matters with ``ignore_case``.

    Returns:
        One :class:`TagBlock` per block, leftmost first; an opening tag without a closing tag of its
        name after it starts no block.

    Raises:
        ValueError: an empty name list or a name that is empty or holds ``<``, ``>`` or ``/``.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names or any(not isinstance(n, str) or not n or set(n) & set("<>/") for n in names):
        raise ValueError(f"tag names must be non-empty strings without '<', '>' or '/', got {names!r}")
    if not isinstance(text, str):
        return []
    spelled = same_spelling and ignore_case
    live = list(range(len(names)))  # indices of the names whose opening tags may still be closed
    unclosed: set[tuple[int, str]] = set()  # (name, spelling) pairs never closed after pos (same_spelling)
    blocks: list[TagBlock] = []
    pos = 0
    while live:
        opening = _opening(tuple(names[i] for i in live), ignore_case).search(text, pos)
        if opening is None:
            break
        index = live[opening.lastindex - 1]
        spelling = opening.group(opening.lastindex).lower() if spelled else ""
        if (index, spelling) in unclosed:
            pos = opening.end()
            continue
        closing_tag = _closing(names[index], ignore_case)
        closing = closing_tag.search(text, opening.end())
        if closing is None:  # unclosed, and so is every later opening tag of this name
            live.remove(index)
            pos = opening.end()
            continue
        while closing is not None and spelled and closing.group(1).lower() != spelling:
            closing = closing_tag.search(text, closing.end())
        if closing is None:  # unclosed, and so is every later opening tag of this name and spelling
            unclosed.add((index, spelling))
            pos = opening.end()
            continue
        blocks.append(TagBlock(names[index], opening.start(), opening.end(), closing.start(), closing.end()))
        pos = closing.end()
    return blocks


def tag_contents(text: str, name: str, *, ignore_case: bool = False) -> list[str]:
    """The contents of the ``<name>...</name>`` blocks of ``text``, as
    ``re.findall(r"<name>(.*?)</name>", text, re.DOTALL)`` gives them, in linear time (:func:`tag_blocks`)."""
    return [text[b.inner_start:b.inner_end] for b in tag_blocks(text, name, ignore_case=ignore_case)]
