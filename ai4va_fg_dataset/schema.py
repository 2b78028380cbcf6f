"""The AI4VA-FG sample: task names, splits and the columns every built sample has.

One row of every config of the built dataset (method.md section 2):

============== ============================= ====================================================
column         type                          meaning
============== ============================= ====================================================
id             string                        ``"<task>/<page_id>/<n>"``, unique in the dataset
task           string                        one of :data:`TASKS`
image          Image                         the page with the task's marks drawn (PNG/JPEG bytes)
question       string                        the question, without the options
choices        list[string]                  option texts (empty for open / numeric answers)
answer         string                        a letter ``"A"``.. for choices, digits for counting,
                                             free text for Panel Understanding
answer_type    string                        ``"choice"``, ``"number"`` or ``"open"``
bboxes         list[list[float32, 4]]        grounding regions ``[x1, y1, x2, y2]`` in pixels of
                                             ``image`` (GT for the zoom tool and the IoU reward);
                                             empty where the task has none
width, height  int32                         size of ``image`` in pixels
page_id        string                        the source page; splits never share a page
source         string                        adapter / dataset the page came from
panel_bboxes   list[list[float32, 4]]        the panels that contain the grounding entities,
                                             ``[x1, y1, x2, y2]`` page pixels, one per panel, in
                                             reading order (the manual panel zoom of paper Table
                                             3.3); empty where the source has no panels or the
                                             task has no grounding entity
panel_scope    string                        ``"single"`` or ``"multi"`` panel question
skill          string                        ``"recognition"`` or ``"understanding"``
============== ============================= ====================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .core.prompts import CHOICE_LETTERS, format_choices  # noqa: F401  (the row schema's choice letters)
from .tasks.spec import ANSWER_TYPES, TASK_NAMES
from .tasks.spec import TASK_TITLES as _SPEC_TITLES

TASKS: Sequence[str] = TASK_NAMES
"""Config names of the AI4VA-FG tasks, in the paper's table order (method.md section 2): the names of
the :class:`~ai4va_fg_dataset.tasks.spec.TaskSpec` declarations, live (a task registered with
:func:`~ai4va_fg_dataset.tasks.spec.register_task` appears here)."""

TASK_TITLES: Mapping[str, str] = _SPEC_TITLES
"""``{task: title}`` from the task declarations (live, like :data:`TASKS`)."""

SPLITS: tuple[str, ...] = ("train", "validation", "test")

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "string", "`\"<task>/<page_id>/<n>\"`, unique in the dataset"),
    ("task", "string", "the task config name (see Tasks)"),
    ("image", "Image", "the page with the task's marks drawn (PNG/JPEG bytes)"),
    ("question", "string", "the question, without the options"),
    ("choices", "list[string]", "option texts (empty for open / numeric answers)"),
    ("answer", "string", "a letter `\"A\"`.. for choices, digits for counting, free text for Panel Understanding"),
    ("answer_type", "string", "`\"choice\"`, `\"number\"` or `\"open\"`"),
    ("bboxes", "list[list[float32, 4]]", ("grounding regions `[x1, y1, x2, y2]` in pixels of `image` (GT for the "
                                          "zoom tool and the IoU reward); empty where the task has none")),
    ("width", "int32", "width of `image` in pixels"),
    ("height", "int32", "height of `image` in pixels"),
    ("page_id", "string", "the source page; splits never share a page"),
    ("source", "string", "adapter / dataset the page came from"),
    ("panel_bboxes", "list[list[float32, 4]]", (
        "the panels that contain the grounding entities, `[x1, y1, x2, y2]` page pixels, one per panel, in reading "
        "order (the manual panel zoom of paper Table 3.3); empty where the source has no panels or the task has no "
        "grounding entity")),
    ("panel_scope", "string", "`\"single\"` or `\"multi\"` panel question (thesis Table 3.1)"),
    ("skill", "string", "`\"recognition\"` or `\"understanding\"` (thesis Table 3.1)"),
)
"""``(column, type, meaning in Markdown)`` of every column, in :func:`features` order: the module
docstring's table as data (the dataset card renders it)."""


# Colours of the marks drawn on page images (method.md section 2: solid blue boxes, filled orange
# markers).
BOX_COLOR = (0, 90, 255)
MARKER_COLOR = (255, 140, 0)


def features():
    """The ``datasets.Features`` of every config (imported lazily: ``datasets`` is heavy)."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "task": Value("string"),
            "image": Image(),
            "question": Value("string"),
            "choices": List(Value("string")),
            "answer": Value("string"),
            "answer_type": Value("string"),
            "bboxes": List(List(Value("float32"), length=4)),
            "width": Value("int32"),
            "height": Value("int32"),
            "page_id": Value("string"),
            "source": Value("string"),
            "panel_bboxes": List(List(Value("float32"), length=4)),
            "panel_scope": Value("string"),
            "skill": Value("string"),
        }
    )


@dataclass
class Sample:
    """One generated VQA sample before export (see the module docstring for the columns).

    ``image`` is a ``PIL.Image.Image`` (marks drawn) or the ``bytes`` of the untouched page file
    when the task draws nothing (cheaper: no decode / re-encode).
    """

    id: str
    task: str
    image: Any
    question: str
    answer: str
    answer_type: str
    page_id: str
    source: str
    width: int
    height: int
    choices: list[str] = field(default_factory=list)
    bboxes: list[list[float]] = field(default_factory=list)
    panel_bboxes: list[list[float]] = field(default_factory=list)
    panel_scope: str = "single"
    skill: str = "recognition"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"sample {self.id}: unknown task {self.task!r}; expected one of {TASKS}")
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"sample {self.id}: unknown answer_type {self.answer_type!r}")
        if self.answer_type == "choice":
            letters = CHOICE_LETTERS[: len(self.choices)]
            if len(self.choices) < 2 or self.answer not in letters:
                raise ValueError(
                    f"sample {self.id}: answer {self.answer!r} is not one of the letters {list(letters)}"
                )
        for b in self.bboxes:
            if len(b) != 4 or not (b[0] < b[2] and b[1] < b[3]):
                raise ValueError(f"sample {self.id}: bad grounding bbox {b!r}")
        for b in self.panel_bboxes:
            if len(b) != 4 or not (b[0] < b[2] and b[1] < b[3]):
                raise ValueError(f"sample {self.id}: bad panel bbox {b!r}")

    def to_row(self) -> dict[str, Any]:
        """The sample as a dict of the dataset's columns (image still PIL or bytes)."""
        return {
            "id": self.id,
            "task": self.task,
            "image": self.image,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
            "answer_type": self.answer_type,
            "bboxes": [[float(v) for v in b] for b in self.bboxes],
            "width": int(self.width),
            "height": int(self.height),
            "page_id": self.page_id,
            "source": self.source,
            "panel_bboxes": [[float(v) for v in b] for b in self.panel_bboxes],
            "panel_scope": self.panel_scope,
            "skill": self.skill,
        }

