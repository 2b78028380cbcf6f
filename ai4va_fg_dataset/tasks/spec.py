"""The task contract: one :class:`TaskSpec` declaration per AI4VA-FG task (issue 10, architecture.md).

Everything that knows about tasks reads these declarations instead of keeping its own copy: the row
schema (:data:`ai4va_fg_dataset.schema.TASKS`, ``TASK_TITLES``), the generator registry
(:mod:`ai4va_fg_dataset.tasks`), what a source can feed (adapters declare the page-model fields they
fill, :data:`PAGE_FIELDS`; a task needs :attr:`TaskSpec.needs`), the dataset card, the training task
lists (:func:`closed_tasks`, :func:`rarl_tasks`), the lmms-eval YAMLs
(``python -m lmms_eval_tasks.ai4va_fg.generate_yamls``) and the evaluation report's columns.

Adding a task = a :func:`register_task` call with its declaration + its generator module + tests
(``tests/test_task_contract.py`` does exactly that with a toy task).

This module imports nothing of the project but :mod:`ai4va_fg_dataset.core` (and nothing at all today):
training and evaluation import it cheaply. The generator is a lazy ``"module:Class"`` reference,
resolved only by :meth:`TaskSpec.generator_class`.

Sources of the figures: method.md section 2 (the task table: answer type, options, #QA, grounding),
section 3 "Reference results" (accuracy %, test split; the paper's main table and Table 3.3 manual
zoom), section 4 (RARL trains on the five tasks with GT boxes; curriculum by category), and the
thesis Table 3.1 (single- vs multi-panel, recognition vs understanding).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

AnswerType = Literal["choice", "number", "open"]
PanelScope = Literal["single", "multi"]
Skill = Literal["recognition", "understanding"]

ANSWER_TYPES: tuple[str, ...] = ("choice", "number", "open")
"""``"choice"``: a letter among the options; ``"number"``: digits; ``"open"``: free text (LLM judge)."""

PANEL_SCOPES: tuple[str, ...] = ("single", "multi")
SKILLS: tuple[str, ...] = ("recognition", "understanding")

PAGE_FIELDS: frozenset[str] = frozenset(
    {
        "panels",  # Page.panels (boxes)
        "panels.order",  # Panel.order: annotated reading order
        "entities",  # Page.entities of any kind (characters and objects)
        "entities.depth",  # Entity.depth: ordinal depth
        "characters",  # Page.characters (entities of kind "character")
        "characters.identity",  # Entity.identity
        "characters.pose",  # Entity.pose: pose / action label
        "balloons",  # Page.balloons (boxes)
        "balloons.text",  # Balloon.text: transcription
        "balloons.order",  # Balloon.order: annotated reading order
        "balloons.speaker",  # Balloon.speaker_id / speaker_name: annotated speaker link
    }
)
"""The page-model fields (:mod:`ai4va_fg_dataset.page`) a task may need and an adapter may fill, as
``"<collection>"`` or ``"<collection>.<attribute>"``."""

PAPER_MODELS: tuple[str, ...] = (
    "random",
    "Qwen2.5-VL-3B",
    "Qwen2.5-VL-7B",
    "Qwen2.5-VL-32B",
    "InternVL3-8B",
    "GPT-4o",
    "Gemini-2.5-pro",
    "7B SFT-S",
    "7B SFT-R",
    "7B RL (GRPO)",
    "7B RARL",
)
"""Rows of the paper's reference table (method.md section 3), in its order."""

CURRICULUM_CATEGORIES: tuple[str, ...] = ("action_depth", "reordering", "character", "open")
"""The RL curriculum categories of method.md section 4, in curriculum order ("action & depth ->
reordering -> character", open-ended trained separately)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class TaskSpec:
    """The declaration of one task: everything the builder, the card, training and evaluation know.

    Attributes:
        name: config / task name, ``[a-z][a-z0-9_]*`` (e.g. ``"depth_comparison"``).
        title: human title (``"Depth Comparison"``).
        short_title: column label of the paper's tables and the report (``"Depth"``).
        answer_type: ``"choice"``, ``"number"`` or ``"open"`` (:data:`ANSWER_TYPES`).
        n_choices: options per question for ``"choice"`` tasks (method.md section 2), else ``None``.
        grounding: what the row's ``bboxes`` (pixels ``[x1, y1, x2, y2]`` of the page image) mean,
            e.g. ``"the marked character"``; ``None`` when the task has no grounding boxes.
        needs: the page-model fields (:data:`PAGE_FIELDS`) a source must fill for the task; whether a
            given file has enough of them is the generator's ``why_not`` (see
            :func:`ai4va_fg_dataset.tasks.feasibility`).
        generator: the generator class as ``"package.module:ClassName"``, imported only by
            :meth:`generator_class`.
        description: one or two sentences for the dataset card (Markdown).
        panel_scope: ``"single"`` or ``"multi"`` panel question (thesis Table 3.1).
        skill: ``"recognition"`` or ``"understanding"`` (thesis Table 3.1).
        rl_trainable: RARL trains on it (method.md section 4: the tasks with GT boxes).
        curriculum: category of the RL curriculum (:data:`CURRICULUM_CATEGORIES`).
        chance: accuracy in % of a uniform random guess over the options that can answer the question
            (``100 / answering_choices``, default ``100 / n_choices``); ``None`` for open and numeric
            answers (a property). This is the "random" row of method.md's reference table.
        answering_choices: options that can be the answer when fewer than ``n_choices`` can
            (Character Identification: 4 options, 2 ruled out by the marks, random baseline 50%).
        paper_qa: number of QA pairs in the paper's AI4VA-FG (method.md section 2), ``None`` for new tasks.
        paper_scores: ``((model, accuracy %), ...)`` of the paper's reference table (``None`` = "-").
        paper_manual_zoom: Qwen2.5-VL-7B accuracy % with the GT panel crop (Table 3.3), or ``None``.
        manual_zoom: the manual-zoom control (Table 3.3: the model sees the crops of the panels that
            hold the grounding entities instead of the page) is run on it: it has the lmms-eval
            ``_zoom`` / ``_zoom_entity`` variants. Needs grounding boxes.
        separate_regions: the grounding boxes are separate regions (e.g. two characters in different
            panels), not parts of one: the entity-crop zoom shows one crop per box, not their union.

    Raises:
        ValueError: a bad name, answer type, panel scope, skill, curriculum category, page field,
            generator reference, ``n_choices`` (< 2 for choice tasks, or set for other types), or a
            paper model not in :data:`PAPER_MODELS`; each message names the bad value.
    """

    name: str
    title: str
    short_title: str
    answer_type: AnswerType
    generator: str
    description: str
    panel_scope: PanelScope
    skill: Skill
    n_choices: int | None = None
    grounding: str | None = None
    needs: tuple[str, ...] = ()
    rl_trainable: bool = False
    curriculum: str = "open"
    paper_qa: int | None = None
    paper_scores: tuple[tuple[str, float | None], ...] = field(default=())
    paper_manual_zoom: float | None = None
    manual_zoom: bool = False
    separate_regions: bool = False
    answering_choices: int | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name or ""):
            raise ValueError(f"task name {self.name!r} must match {_NAME.pattern}")
        where = f"task {self.name!r}"
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"{where}: answer_type {self.answer_type!r} is not one of {ANSWER_TYPES}")
        if self.panel_scope not in PANEL_SCOPES:
            raise ValueError(f"{where}: panel_scope {self.panel_scope!r} is not one of {PANEL_SCOPES}")
        if self.skill not in SKILLS:
            raise ValueError(f"{where}: skill {self.skill!r} is not one of {SKILLS}")
        if self.curriculum not in CURRICULUM_CATEGORIES:
            raise ValueError(f"{where}: curriculum {self.curriculum!r} is not one of {CURRICULUM_CATEGORIES}")
        if self.answer_type == "choice":
            if not isinstance(self.n_choices, int) or self.n_choices < 2:
                raise ValueError(f"{where}: a choice task needs n_choices >= 2, got {self.n_choices!r}")
        elif self.n_choices is not None:
            raise ValueError(f"{where}: n_choices={self.n_choices!r} on a {self.answer_type!r} task")
        bad = [f for f in self.needs if f not in PAGE_FIELDS]
        if bad:
            raise ValueError(f"{where}: unknown page field(s) {bad} in needs; known: {sorted(PAGE_FIELDS)}")
        if not _REF.match(self.generator or ""):
            raise ValueError(f"{where}: generator {self.generator!r} is not a 'package.module:ClassName' reference")
        bad = [m for m, _ in self.paper_scores if m not in PAPER_MODELS]
        if bad:
            raise ValueError(f"{where}: paper_scores rows {bad} are not paper models {PAPER_MODELS}")
        if self.manual_zoom and self.grounding is None:
            raise ValueError(f"{where}: manual_zoom needs grounding boxes (the crops), grounding is None")
        if self.rl_trainable and self.grounding is None:
            raise ValueError(f"{where}: rl_trainable needs grounding boxes (the RARL IoU reward), grounding is None")

    @property
    def closed(self) -> bool:
        """A closed-ended task (choice or number answer): scored by exact match, trained by GRPO / SFT."""
        return self.answer_type != "open"

    @property
    def has_grounding(self) -> bool:
        """Rows carry grounding boxes (GT of the zoom tool and the IoU reward)."""
        return self.grounding is not None

    @property
    def chance(self) -> float | None:
        """Accuracy in % of a uniform guess over the options that can answer the question (the paper's
        random baseline), ``None`` for number / open answers."""
        n = self.answering_choices or self.n_choices
        return 100.0 / n if n else None

    def paper_score(self, model: str) -> float | None:
        """The paper's accuracy % of ``model`` on this task (``None``: "-" or no row).

        Raises:
            KeyError: ``model`` is not one of :data:`PAPER_MODELS`.
        """
        if model not in PAPER_MODELS:
            raise KeyError(f"{model!r} is not a paper model; known: {PAPER_MODELS}")
        return dict(self.paper_scores).get(model)

    def generator_class(self) -> type:
        """Import and return the generator class (a ``TaskGenerator`` subclass).

        Raises:
            ImportError: the module of :attr:`generator` cannot be imported.
            AttributeError: the module has no such class.
        """
        module, _, cls = self.generator.partition(":")
        return getattr(importlib.import_module(module), cls)


_LOCK = threading.Lock()
TASK_SPECS: dict[str, TaskSpec] = {}
"""Every registered task by name, in registration order (the paper's table order for the seven)."""


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Add ``spec`` to :data:`TASK_SPECS` (and so to ``schema.TASKS`` and every derived list).

    Returns ``spec``. Raises:
        TypeError: ``spec`` is not a :class:`TaskSpec`.
        ValueError: a task of that name is registered already (and ``replace`` is false).
    """
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"register_task needs a TaskSpec, got {type(spec).__name__}")
    with _LOCK:
        if spec.name in TASK_SPECS and not replace:
            raise ValueError(f"task {spec.name!r} is already registered")
        TASK_SPECS[spec.name] = spec
    return spec


def unregister_task(name: str) -> TaskSpec:
    """Remove the task ``name`` (tests that register a toy task use it to clean up).

    Raises:
        KeyError: no task of that name.
    """
    with _LOCK:
        if name not in TASK_SPECS:
            raise KeyError(f"unknown task {name!r}; known: {list(TASK_SPECS)}")
        return TASK_SPECS.pop(name)


def get_task(name: str) -> TaskSpec:
    """The declaration of task ``name``.

    Raises:
        KeyError: unknown task (the message lists the known ones).
    """
    try:
        return TASK_SPECS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {list(TASK_SPECS)}") from None


def task_names() -> tuple[str, ...]:
    """Names of the registered tasks, in registration order."""
    return tuple(TASK_SPECS)


def iter_tasks() -> Iterator[TaskSpec]:
    """The registered declarations, in registration order (a snapshot: safe to register while iterating)."""
    return iter(tuple(TASK_SPECS.values()))


def closed_tasks(*, paper_only: bool = False) -> tuple[str, ...]:
    """The closed-ended tasks (choice / number answers); with ``paper_only`` only the paper's
    (:data:`PAPER_TASKS`): the training set of the paper's vanilla GRPO and SFT (method.md section 4)."""
    return tuple(s.name for s in iter_tasks() if s.closed and (not paper_only or s.name in PAPER_TASKS))


def rarl_tasks(*, paper_only: bool = False) -> tuple[str, ...]:
    """The tasks RARL can train on: those declared ``rl_trainable`` (they have GT grounding boxes;
    method.md section 4: not the reordering tasks). ``paper_only``: only the paper's seven tasks
    (:data:`PAPER_TASKS`), i.e. the five the paper's RARL trains on."""
    return tuple(s.name for s in iter_tasks() if s.rl_trainable and (not paper_only or s.name in PAPER_TASKS))


def curriculum_groups(tasks: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The closed tasks of ``tasks`` (default: all registered) by RL curriculum category, in curriculum
    order (:data:`CURRICULUM_CATEGORIES`, method.md section 4: "action & depth -> reordering ->
    character"; open-ended tasks are trained separately and left out); empty categories are left out.

    Raises:
        KeyError: an unknown task name.
    """
    specs = [get_task(t) for t in tasks] if tasks is not None else list(iter_tasks())
    out = {c: tuple(s.name for s in specs if s.curriculum == c and s.closed) for c in CURRICULUM_CATEGORIES}
    return {c: names for c, names in out.items() if names}


def grounded_tasks() -> tuple[str, ...]:
    """The tasks whose rows carry grounding boxes (zoom IoU statistics make sense for them)."""
    return tuple(s.name for s in iter_tasks() if s.has_grounding)


class _LiveTaskNames(Sequence):
    """The registered task names as a read-only sequence that follows :data:`TASK_SPECS` (so a module
    that did ``from ai4va_fg_dataset.schema import TASKS`` sees tasks registered later). Compares equal
    to a tuple or list of the same names."""

    def __getitem__(self, i):
        return task_names()[i]

    def __len__(self) -> int:
        return len(TASK_SPECS)

    def __contains__(self, name: object) -> bool:
        return name in TASK_SPECS

    def __iter__(self) -> Iterator[str]:
        return iter(task_names())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Sequence, _LiveTaskNames)) and not isinstance(other, str) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(task_names())

    def __reduce__(self):
        return (tuple, (task_names(),))


class _LiveTaskTitles(Mapping):
    """``{name: title}`` of the registered tasks, read-only, following :data:`TASK_SPECS`."""

    def __getitem__(self, name: str) -> str:
        try:
            return TASK_SPECS[name].title
        except KeyError:
            raise KeyError(f"unknown task {name!r}; known: {list(TASK_SPECS)}") from None

    def __len__(self) -> int:
        return len(TASK_SPECS)

    def __iter__(self) -> Iterator[str]:
        return iter(task_names())

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self):
        return (dict, (dict(self),))


TASK_NAMES: Sequence[str] = _LiveTaskNames()
"""Every registered task name, live (``schema.TASKS`` is this object)."""

TASK_TITLES: Mapping[str, str] = _LiveTaskTitles()
"""``{name: title}`` of every registered task, live (``schema.TASK_TITLES`` is this object)."""


def _scores(*values: float | None) -> tuple[tuple[str, float | None], ...]:
    if len(values) != len(PAPER_MODELS):
        raise ValueError(f"{len(values)} scores for {len(PAPER_MODELS)} paper models")
    return tuple(zip(PAPER_MODELS, values))


# The seven tasks of AI4VA-FG (method.md section 2), in the paper's table order. Scores: method.md
# section 3 "Reference results", one value per row of PAPER_MODELS (random, 3B, 7B, 32B, InternVL3-8B,
# GPT-4o, Gemini-2.5-pro, SFT-S, SFT-R, RL, RARL).
_T = "ai4va_fg_dataset.tasks."
for _spec in (
    TaskSpec(
        name="panel_understanding",
        title="Panel Understanding",
        short_title="PanelU",
        answer_type="open",
        grounding="the panel (described in words only, not marked)",
        needs=("panels",),
        generator=_T + "panel_understanding:PanelUnderstandingGenerator",
        description=(
            "Open questions about one panel, which is described only by its position in words "
            "(\"the second panel of the top row\"); QA pairs generated by a strong VLM from the panel "
            "crop; scored by an LLM judge."
        ),
        panel_scope="single",
        skill="understanding",
        rl_trainable=True,
        curriculum="open",
        paper_qa=7902,
        paper_scores=_scores(None, 29.33, 41.33, 53.33, 38.00, 51.33, 74.67, 50.00, 48.67, 55.33, 51.33),
        paper_manual_zoom=58.67,
        manual_zoom=True,
    ),
    TaskSpec(
        name="action_recognition",
        title="Action Recognition",
        short_title="Action",
        answer_type="choice",
        n_choices=4,
        grounding="the marked character",
        needs=("characters", "characters.pose"),
        generator=_T + "action_recognition:ActionRecognitionGenerator",
        description=(
            "What is the marked character doing? Four options; the distractors are other pose/action "
            "labels of the dataset."
        ),
        panel_scope="single",
        skill="recognition",
        rl_trainable=True,
        curriculum="action_depth",
        paper_qa=1669,
        paper_scores=_scores(25.00, 39.46, 43.54, 62.59, 44.90, 31.97, 74.15, 70.07, 68.03, 72.11, 76.19),
        paper_manual_zoom=55.78,
        manual_zoom=True,
    ),
    TaskSpec(
        name="depth_comparison",
        title="Depth Comparison",
        short_title="Depth",
        answer_type="choice",
        n_choices=2,
        grounding="the two marked entities",
        needs=("entities", "entities.depth"),
        generator=_T + "depth_comparison:DepthComparisonGenerator",
        description="Which of two marked entities of one panel is closer to the viewer (from ordinal depth)? Two options.",
        panel_scope="single",
        skill="recognition",
        rl_trainable=True,
        curriculum="action_depth",
        paper_qa=1125,
        paper_scores=_scores(50.00, 48.54, 49.51, 56.31, 51.46, 52.43, 63.11, 45.63, 45.63, 52.43, 57.28),
        paper_manual_zoom=54.34,
        manual_zoom=True,
    ),
    TaskSpec(
        name="dialog_reordering",
        title="Dialog Reordering",
        short_title="DialogR",
        answer_type="choice",
        n_choices=2,
        grounding=None,
        needs=("balloons", "balloons.text", "balloons.order"),
        generator=_T + "dialog_reordering:DialogReorderingGenerator",
        description=(
            "The transcribed texts of the page's speech balloons are listed shuffled in the question; "
            "pick their reading order. Two options."
        ),
        panel_scope="multi",
        skill="understanding",
        rl_trainable=False,
        curriculum="reordering",
        paper_qa=1364,
        paper_scores=_scores(50.00, 44.44, 54.76, 71.43, 61.11, 76.80, 90.48, 55.56, 69.05, 60.32, None),
    ),
    TaskSpec(
        name="panel_reordering",
        title="Panel Reordering",
        short_title="PanelR",
        answer_type="choice",
        n_choices=2,
        grounding=None,
        needs=("panels", "panels.order"),
        generator=_T + "panel_reordering:PanelReorderingGenerator",
        description="Insert a given panel back into the right position among missing panels. Two options.",
        panel_scope="multi",
        skill="understanding",
        rl_trainable=False,
        curriculum="reordering",
        paper_qa=1392,
        paper_scores=_scores(50.00, 19.84, 50.00, 45.24, 49.21, 63.49, 46.03, 47.02, 49.21, 47.62, None),
    ),
    TaskSpec(
        name="character_identification",
        title="Character Identification",
        short_title="CharID",
        answer_type="choice",
        n_choices=4,
        grounding="the two marked characters",
        needs=("characters", "characters.identity"),
        generator=_T + "character_identification:CharacterIdentificationGenerator",
        description=(
            "Are two marked characters in different panels the same character? Four options, two of "
            "which the marks rule out (the paper reports a 50% random baseline)."
        ),
        panel_scope="multi",
        skill="recognition",
        rl_trainable=True,
        curriculum="character",
        paper_qa=2368,
        paper_scores=_scores(50.00, 55.88, 49.26, 54.41, 54.41, 49.22, 83.09, 49.22, 63.97, 66.18, 71.32),
        paper_manual_zoom=52.94,
        manual_zoom=True,
        separate_regions=True,
        answering_choices=2,
    ),
    TaskSpec(
        name="character_counting",
        title="Character Counting",
        short_title="CharCount",
        answer_type="number",
        grounding="every appearance of the character",
        needs=("characters", "characters.identity"),
        generator=_T + "character_counting:CharacterCountingGenerator",
        description="How many times does a given character appear on the page? A number.",
        panel_scope="multi",
        skill="recognition",
        rl_trainable=True,
        curriculum="character",
        paper_qa=444,
        paper_scores=_scores(None, 2.70, 8.11, 10.81, 2.70, 13.51, 27.03, 18.92, 10.81, 5.41, 2.70),
    ),
):
    register_task(_spec)
del _spec

PAPER_TASKS: tuple[str, ...] = task_names()
"""The seven tasks of the paper (method.md section 2), fixed at import: :func:`task_names` also lists
tasks registered later."""

# Tasks beyond the paper (issue 11). Not in PAPER_TASKS: no paper scores.
register_task(
    TaskSpec(
        name="speaker_attribution",
        title="Speaker Attribution",
        short_title="Speaker",
        answer_type="choice",
        n_choices=4,
        grounding="the marked balloon, then its speaker (where the source has character boxes)",
        needs=("balloons", "balloons.speaker"),
        generator=_T + "speaker_attribution:SpeakerAttributionGenerator",
        description=(
            "Who says the marked balloon? The options are the marked candidate characters (letters on "
            "boxes) or, where the source names its characters (Mimi & Eunice), their names; up to four "
            "options, all on the page (two to four: chance is 1 / options per item, 25% at four). The key "
            "comes only from annotated speaker links (Manga109Dialog, PopManga / Magi, Mimi & Eunice)."
        ),
        panel_scope="single",
        skill="understanding",
        rl_trainable=True,
        curriculum="character",
    )
)
