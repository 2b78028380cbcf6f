"""Panel Understanding (method.md section 2): open-ended questions about one panel, judged by an LLM.

For every panel of a page, in reading order (:func:`~ai4va_fg_dataset.reading_order.reading_order`
in the page's direction), the panel is cropped and sent to a VLM client
(:mod:`ai4va_fg_dataset.core.llm`, the paper used Gemini-2.5-flash) with :data:`PROMPT`: describe
the characters, actions and notable elements, then write N objective VQA pairs, no OCR-style
questions, in a ``Caption:`` / ``Question:`` / ``Answer:`` layout. The reply is parsed by
:func:`parse_qa`; each pair becomes a sample whose question starts with the panel's position in
words (:func:`~ai4va_fg_dataset.reading_order.describe_positions`): the panel is **not** marked,
the image is the untouched page, and the grounding box is the panel.

A reply that cannot be parsed, or a failed call, skips that panel and is counted
(``"panel: malformed VLM output"``, ``"panel: VLM call failed (<error type>)"``); it never stops
the build.
"""

from __future__ import annotations

import logging
import random
import re

from ..core.geometry import crop_image
from ..core.llm import scrub
from ..page import Page
from ..reading_order import describe_positions, reading_order
from ..schema import Sample
from .base import TaskGenerator, open_page, page_bytes

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONS = 3

PROMPT = (
    "You are looking at one panel cropped from a comic page.\n"
    "First describe the panel in a short caption: the characters (appearance, expressions), what "
    "they are doing, and any notable objects, setting or visual elements.\n"
    "Then write {n} visual question-answer pairs about the panel. The questions must be objective "
    "and answerable from the image alone (who, what, where, how many, which action, which "
    "colour...). Do not ask about the text in speech balloons or captions (no OCR-style "
    "questions). Keep each answer short (a word to one sentence).\n"
    "Output exactly in this format and nothing else:\n"
    "Caption: <caption>\n"
    "Question: <question 1>\n"
    "Answer: <answer 1>\n"
    "Question: <question 2>\n"
    "Answer: <answer 2>\n"
    "..."
)
"""The generation prompt of method.md section 2 (``{n}``: questions per panel)."""

_FIELD = re.compile(
    r"^[\s>*_#\-\d.)]*(caption|question|answer|q|a)\s*(?:\d+)?\s*[*_]*\s*[:：]\s*[*_]*\s*(.*)$",
    re.IGNORECASE,
)


def parse_qa(text: str) -> tuple[str | None, list[tuple[str, str]]]:
    """Parse a ``Caption:`` / ``Question:`` / ``Answer:`` reply.

    Tolerates Markdown (``**Question 1:**``), numbering, ``Q:`` / ``A:``, blank lines and answers
    running over several lines. A question without an answer (or the reverse) is dropped; empty
    fields are dropped.

    Returns:
        ``(caption or None, [(question, answer), ...])``; an empty list when nothing parses.
    """
    caption: str | None = None
    pairs: list[tuple[str, str]] = []
    current: str | None = None
    buf: dict[str, list[str]] = {}
    question: str | None = None

    def flush(field: str | None) -> None:
        nonlocal caption, question
        if field is None:
            return
        value = " ".join(" ".join(buf.get(field, [])).split()).strip(" *_")
        buf[field] = []
        if field == "caption":
            caption = value or caption
        elif field == "question":
            question = value or None
        elif field == "answer":
            if question and value:
                pairs.append((question, value))
            question = None

    for line in (text or "").splitlines():
        m = _FIELD.match(line)
        if m:
            flush(current)
            key = m.group(1).lower()
            current = {"q": "question", "a": "answer"}.get(key, key)
            buf[current] = [m.group(2)]
        elif current is not None and line.strip():
            buf[current].append(line.strip())
    flush(current)
    return caption, pairs


class PanelUnderstandingGenerator(TaskGenerator):
    """Samples: one per parsed QA pair; question = position in words + VLM question; answer open.

    Args:
        client: a :class:`~ai4va_fg_dataset.core.llm.VLMClient`; ``None``: every page is skipped
            with "no VLM client configured (--pu-provider)".
        questions: QA pairs asked per panel (``{n}`` of :data:`PROMPT`); extra pairs in a reply
            are dropped.
    """

    name = "panel_understanding"

    def __init__(self, client=None, questions: int = DEFAULT_QUESTIONS):
        super().__init__()
        if questions < 1:
            raise ValueError(f"questions per panel must be at least 1, got {questions}")
        self.client = client
        self.questions = questions

    def why_not(self, page: Page) -> str | None:
        if self.client is None:
            return "no VLM client configured (--pu-provider)"
        return self.annotation_why_not(page)

    def annotation_why_not(self, page: Page) -> str | None:
        """The page needs panel boxes (the VLM client is the run's configuration, not the page's)."""
        if not page.panels:
            return "no panel boxes"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        boxes = [p.bbox for p in page.panels]
        order = reading_order(boxes, page.reading_direction)
        where = describe_positions(boxes, page.reading_direction)
        image = open_page(page)
        data = page_bytes(page)
        prompt = PROMPT.format(n=self.questions)
        out: list[Sample] = []
        for i in order:
            panel = page.panels[i]
            try:
                reply = self.client.generate(prompt, [crop_image(image, panel.bbox)])
            except Exception as exc:  # noqa: BLE001 - any client / network error: skip the panel, count it
                # core.llm.LLMError names the failure in .kind (the SDK error, "HTTP 429"...), already scrubbed
                kind = getattr(exc, "kind", None) or type(exc).__name__
                logger.warning("%s panel %s: VLM call failed: %s: %s", page.page_id, panel.id, kind, scrub(exc))
                self.skip(f"panel: VLM call failed ({kind})")
                continue
            _, pairs = parse_qa(reply if isinstance(reply, str) else "")
            if not pairs:
                logger.warning("%s panel %s: malformed VLM output: %r", page.page_id, panel.id, str(reply)[:200])
                self.skip("panel: malformed VLM output")
                continue
            for q, a in pairs[: self.questions]:
                out.append(self.sample(
                    page, len(out), image=data, question=f"In {where[i]}: {q}", answer=a, answer_type="open",
                    width=page.width, height=page.height, bboxes=[list(panel.bbox)],
                    panel_bboxes=[list(panel.bbox)],
                ))
        return out
