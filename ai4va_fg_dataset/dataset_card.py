"""The ``README.md`` dataset card of a built AI4VA-FG folder.

The YAML front matter is produced by the same helpers ``datasets.push_to_hub`` uses:
``huggingface_hub.DatasetCardData`` filled by ``datasets.utils.metadata.MetadataConfigs``
(``configs:`` with ``data_files`` per split, one config per task) and
``datasets.info.DatasetInfosDict`` (``dataset_info:`` with the features of
:func:`ai4va_fg_dataset.schema.features` and ``num_examples`` per split). The body describes the
tasks (method.md section 2), the columns (the table of :mod:`ai4va_fg_dataset.schema`), the
counts, what was left out and why, the sources with their licences, and the paper to cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import schema
from .schema import SPLITS, TASK_TITLES, TASKS

PAPER_TITLE = "Zooming into Comics: Region-Aware RL Improves Fine-Grained Comic Understanding in Vision-Language Models"
PAPER_ARXIV = "2511.06490"
CITATION = f"""@misc{{chen2025zoomingcomics,
  title         = {{{PAPER_TITLE}}},
  author        = {{Chen and Ren and S{{\\"u}}sstrunk}},
  year          = {{2025}},
  eprint        = {{{PAPER_ARXIV}}},
  archivePrefix = {{arXiv}},
  note          = {{EPFL IVRL / Chalmers}}
}}"""
"""BibTeX of the source paper (method.md, "Source" line)."""

TASK_DESCRIPTIONS: dict[str, tuple[str, str, str]] = {
    "panel_understanding": (
        "open (LLM judge)",
        "the panel (described in words, not drawn)",
        (
            "Questions about one panel, located only by a reading-order phrase (\"the second panel of the "
            "top row\"); questions and reference answers written by a VLM from the panel crop."
        ),
    ),
    "action_recognition": (
        "4 choices",
        "the marked character",
        "What is the character in the blue box doing? Distractors are other pose/action labels.",
    ),
    "depth_comparison": (
        "2 choices",
        "the two marked entities",
        "Which of two marked entities is closer to the viewer (from ordinal depth annotations)?",
    ),
    "dialog_reordering": (
        "2 choices",
        "none",
        "The balloon texts are given in the prompt; pick the correct reading order.",
    ),
    "panel_reordering": (
        "2 choices",
        "none",
        "Insert a given panel into the right position among the missing panels.",
    ),
    "character_identification": (
        "4 choices",
        "the two marked characters",
        "Are two characters marked in different panels the same entity?",
    ),
    "character_counting": (
        "number",
        "every appearance of the character",
        "How many times does a given character appear on the page?",
    ),
}
"""Per task: answer type, grounding boxes, one-line description (method.md section 2 table)."""


LICENSE_NOTE = (
    "Each page keeps the licence of its source; respect the attribution and share-alike / "
    "non-commercial terms listed above when redistributing."
)


@dataclass
class SourceInfo:
    """One annotation source of the build, as listed in the card.

    Attributes:
        name: adapter name (``"acbf"``, ``"openmantra"``, ...).
        pages: pages loaded from it.
        license: licence name(s) of its pages.
        attribution: attribution text(s) the licence asks for.
    """

    name: str
    pages: int
    license: str = ""
    attribution: str = ""


@dataclass
class CardInfo:
    """What the card says besides counts and features.

    Attributes:
        sources: the sources of the pages.
        skipped_tasks: ``{task: reason}`` for requested tasks that produced no sample (no config).
        seed: the build seed (splits and sampling).
        languages: language codes of the question texts.
        notes: extra lines for the card (e.g. bad records skipped).
    """

    sources: list[SourceInfo] = field(default_factory=list)
    skipped_tasks: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    notes: list[str] = field(default_factory=list)


def columns_markdown() -> str:
    """The column table of :mod:`ai4va_fg_dataset.schema`'s docstring as a Markdown table."""
    lines = schema.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line.strip())]
    rule = lines[rules[0]]
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        cells = [c.strip() for c in _cells(line, spans)]
        if cells[0]:
            rows.append(cells)
        elif rows:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    header = [c.strip() for c in _cells(lines[rules[0] + 1], spans)]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_markdown(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _markdown(rst: str) -> str:
    text = rst.replace(":data:`TASKS`", "the config names (see Tasks)").replace("``", "`")
    return text.replace("|", "\\|")


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    return [line[s : (spans[k + 1][0] if k + 1 < len(spans) else len(line))] for k, (s, _) in enumerate(spans)]


def _size_category(n: int) -> str:
    for limit, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]:
        if n < limit:
            return name
    return "n>1M"


def card_data(counts: dict[str, dict[str, int]], files: dict[str, dict[str, list[str]]], info: CardInfo):
    """The card's YAML metadata (a ``huggingface_hub.DatasetCardData``).

    One config per task in ``counts``; per config only the splits that have rows (see
    :mod:`ai4va_fg_dataset.export` on empty splits).
    """
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    total = sum(sum(c.values()) for c in counts.values())
    data = DatasetCardData(
        pretty_name="AI4VA-FG",
        license="other",
        license_name="mixed-per-source",
        language=info.languages,
        task_categories=["visual-question-answering"],
        tags=["comics", "manga", "fine-grained", "grounding", "multiple-choice"],
        size_categories=[_size_category(total)],
    )
    configs = {}
    infos = {}
    for task in TASKS:
        if task not in counts:
            continue
        present = [s for s in SPLITS if counts[task][s] > 0]
        configs[task] = {"data_files": [{"split": s, "path": files[task][s]} for s in present]}
        splits = SplitDict()
        for s in present:
            splits.add(SplitInfo(name=s, num_examples=counts[task][s]))
        infos[task] = DatasetInfo(features=schema.features(), splits=splits)
    MetadataConfigs(configs).to_dataset_card_data(data)
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data


def card_body(counts: dict[str, dict[str, int]], info: CardInfo) -> str:
    """The Markdown body of the card (everything after the YAML front matter)."""
    first = next((t for t in TASKS if t in counts), "panel_reordering")
    parts = [
        "# AI4VA-FG",
        "",
        "A fine-grained comic understanding benchmark for vision-language models: seven visual "
        "question answering tasks built from annotated comic pages, with grounding boxes "
        "(`bbox_2d`, `[x1, y1, x2, y2]` in pixels of `image`) for the zoom-in tool and "
        f"region-aware RL. Built with the `ai4va-fg` builder following [{PAPER_TITLE}]"
        f"(https://arxiv.org/abs/{PAPER_ARXIV}). Splits are made by page: no page is in two splits"
        + (f" (seed {info.seed})." if info.seed is not None else "."),
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("path/to/this/folder", "{first}")  # or the Hub repo id',
        'row = ds["test"][0]  # row["image"] is a PIL image, row["bboxes"] a list of [x1, y1, x2, y2]',
        "```",
        "",
        "## Tasks",
        "",
        "| config | task | answer | grounding boxes | description |",
        "|---|---|---|---|---|",
    ]
    for task in TASKS:
        answer, boxes, text = TASK_DESCRIPTIONS[task]
        name = f"`{task}`" if task in counts else f"`{task}` (not built)"
        parts.append(f"| {name} | {TASK_TITLES[task]} | {answer} | {boxes} | {text} |")
    parts += ["", "## Columns", "", columns_markdown(), "", "## Counts", ""]
    parts += ["| config | " + " | ".join(SPLITS) + " | total |", "|---|" + "---:|" * (len(SPLITS) + 1)]
    for task in TASKS:
        if task in counts:
            c = counts[task]
            parts.append(f"| `{task}` | " + " | ".join(str(c[s]) for s in SPLITS) + f" | {sum(c.values())} |")
    totals = [sum(counts[t][s] for t in counts) for s in SPLITS]
    parts.append("| **all** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")

    omitted = [f"- `{t}`: no samples ({info.skipped_tasks.get(t, 'not requested')}); no config is written."
               for t in TASKS if t not in counts]
    omitted += [f"- `{t}` has no `{s}` rows; the split is left out of its config."
                for t in TASKS if t in counts for s in SPLITS if counts[t][s] == 0]
    if omitted:
        parts += ["", "### Left out", ""] + omitted
    if info.sources:
        parts += ["", "## Sources", "", "| source | pages | license | attribution |", "|---|---:|---|---|"]
        for src in info.sources:
            parts.append(f"| {src.name} | {src.pages} | {src.license or 'see source'} | {src.attribution or '-'} |")
        parts += ["", LICENSE_NOTE]
    if info.notes:
        parts += ["", "## Build notes", ""] + [f"- {n}" for n in info.notes]
    parts += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(parts)


def write_card(out_dir: Path, counts: dict[str, dict[str, int]], files: dict[str, dict[str, list[str]]],
               info: CardInfo) -> Path:
    """Write ``out_dir/README.md`` (YAML front matter + body); returns its path."""
    from huggingface_hub import DatasetCard

    data = card_data(counts, files, info)
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_body(counts, info)}")
    path = Path(out_dir) / "README.md"
    card.save(str(path))
    return path
