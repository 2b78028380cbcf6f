"""Panel Understanding against a local OpenAI-compatible server (offline), including a malformed
reply, and the reply parser."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import pytest
from PIL import Image
from shared_data import DEMO_DATA as DATA
from test_vlm_client import FakeChatServer, completion

from ai4va_fg_dataset.adapters import load_source
from ai4va_fg_dataset.core.llm import OpenAIClient
from ai4va_fg_dataset.errors import BadRecordLog
from ai4va_fg_dataset.reading_order import describe_positions, reading_order
from ai4va_fg_dataset.tasks import GENERATORS, generate_samples
from ai4va_fg_dataset.tasks.panel_understanding import PanelUnderstandingGenerator, parse_qa

GOOD = """Caption: Two men talk in a cluttered shop.
Question: How many people are in the panel?
Answer: Two
Question: What is the man on the left wearing?
Answer: A denim jacket.
Question: Where does the scene take place?
Answer: In a shop."""


def test_parse_qa_formats():
    caption, pairs = parse_qa(GOOD)
    assert caption == "Two men talk in a cluttered shop."
    assert pairs == [
        ("How many people are in the panel?", "Two"),
        ("What is the man on the left wearing?", "A denim jacket."),
        ("Where does the scene take place?", "In a shop."),
    ]
    md = "**Caption:** A dog.\n\n1. **Question 1:** What animal is shown?\n**Answer 1:** A dog\nthat sleeps.\nQ: Color?\nA: Brown"
    assert parse_qa(md) == ("A dog.", [("What animal is shown?", "A dog that sleeps."), ("Color?", "Brown")])
    assert parse_qa("I cannot help with that.") == (None, [])
    assert parse_qa("") == (None, [])
    # a question without an answer is dropped, the rest kept
    assert parse_qa("Question: a?\nQuestion: b?\nAnswer: yes") == (None, [("b?", "yes")])


def test_panel_understanding_with_local_server_and_malformed_reply():
    pages = load_source("acbf", DATA / "craphound" / "craphound-1.1.acbf", log=BadRecordLog())
    page = next(p for p in pages if p.page_id.endswith("/page21"))
    n_panels = len(page.panels)
    assert n_panels == 7
    sizes = []

    def reply(body):
        (msg,) = body["messages"]
        url = msg["content"][1]["image_url"]["url"]
        sizes.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size)
        assert "Caption:" in msg["content"][0]["text"] and "3 visual question-answer pairs" in msg["content"][0]["text"]
        if len(sizes) == 2:
            return 200, completion("Sorry, here is a poem about comics instead.")
        return 200, completion(GOOD)

    with FakeChatServer(reply) as srv:
        client = OpenAIClient("fake-vlm", base_url=srv.base_url, max_retries=0)
        gens = {**GENERATORS, "panel_understanding": PanelUnderstandingGenerator(client=client, questions=3)}
        samples, skipped = generate_samples([page], seed=0, tasks=["panel_understanding"], generators=gens)

    assert len(sizes) == n_panels
    assert skipped["panel_understanding"] == {"panel: malformed VLM output": 1}
    assert len(samples) == 3 * (n_panels - 1)
    boxes = [p.bbox for p in page.panels]
    order = reading_order(boxes, "ltr")
    where = describe_positions(boxes, "ltr")
    # crops were sent in reading order, at the panel's size
    for k, i in enumerate(order):
        x1, y1, x2, y2 = boxes[i]
        assert sizes[k] == (math.ceil(x2) - math.floor(x1), math.ceil(y2) - math.floor(y1))
    skipped_panel = order[1]
    expected_panels = [i for i in order if i != skipped_panel]
    raw = Path(page.image_path).read_bytes()
    for n, s in enumerate(samples):
        i = expected_panels[n // 3]
        assert s.id == f"panel_understanding/{page.page_id}/{n}"
        assert s.question.startswith(f"In {where[i]}: ")
        assert s.answer_type == "open" and s.choices == []
        assert s.bboxes == [list(boxes[i])]
        assert s.image == raw  # the panel is not marked
    assert samples[0].question == f"In {where[order[0]]}: How many people are in the panel?"
    assert samples[0].answer == "Two"
    assert where[order[0]] == "the left panel of the top row"


class Exploding:
    def generate(self, prompt, images):
        raise ConnectionError("server down")


class Wordy:
    def generate(self, prompt, images):
        return GOOD + "\nQuestion: Extra?\nAnswer: Extra."


def test_client_errors_are_counted_and_extra_pairs_dropped(tmp_path):
    from ai4va_fg_dataset.synthetic import make_synthetic_ai4va

    path = make_synthetic_ai4va(tmp_path, n_pages=1, seed=0)
    (page,) = load_source("synthetic", path, log=BadRecordLog())
    samples, skipped = generate_samples(
        [page], seed=0, tasks=["panel_understanding"],
        generators={"panel_understanding": PanelUnderstandingGenerator(client=Exploding())},
    )
    assert samples == [] and skipped["panel_understanding"] == {
        "panel: VLM call failed (ConnectionError)": len(page.panels), "no sample generated": 1,
    }
    gen = PanelUnderstandingGenerator(client=Wordy(), questions=2)
    samples, skipped = generate_samples([page], seed=0, tasks=["panel_understanding"],
                                        generators={"panel_understanding": gen})
    assert len(samples) == 2 * len(page.panels) and not skipped["panel_understanding"]


def test_no_client_and_bad_question_count():
    gen = PanelUnderstandingGenerator(client=None)
    assert gen.why_not(None) == "no VLM client configured (--pu-provider)"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0"):
        PanelUnderstandingGenerator(client=Wordy(), questions=0)
