"""The ``README.md`` dataset card of a built AI4VA-FG folder.

The YAML front matter is produced by the same helpers ``datasets.push_to_hub`` uses:
``huggingface_hub.DatasetCardData`` filled by ``datasets.utils.metadata.MetadataConfigs``
(``configs:`` with ``data_files`` per split: one config per task, plus the config ``default``,
marked ``default: true``, whose splits list the same Parquet shards of every task, so
``load_dataset(PATH)`` without a config name returns all tasks' rows, told apart by the ``task``
column) and ``datasets.info.DatasetInfosDict`` (``dataset_info:`` with the features of
:func:`ai4va_fg_dataset.schema.features` and ``num_examples`` per split). The body describes the
tasks (method.md section 2), the columns (the table of :mod:`ai4va_fg_dataset.schema`), the
counts, what was left out and why, the sources with their licences, and the paper to cite.

Fingerprint (stale caches): ``datasets`` 5.2 caches a local folder under
``<HF_DATASETS_CACHE>/<folder name>/<config>/0.0.0/<hash>``, where ``<hash>`` is computed from the
card's YAML only (``dataset_info`` + the ``configs`` with their data-file *patterns*; neither file
contents nor modification times, see ``datasets.load.LocalDatasetModuleFactory.get_module``). A
rebuild with changed rows but the same counts and file names, or another build in a folder of the
same name, would therefore be served from the old cache. So every config carries
``description: "... data sha256:<fingerprint>"``, the SHA-256 of its Parquet files' own SHA-256s
(:func:`data_fingerprint`): ``description`` is a ``BuilderConfig`` field, so it enters that hash, and
the cache key changes exactly when the data does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import schema
from ..schema import SPLITS, TASK_TITLES, TASKS

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


DEFAULT_CONFIG = "default"
"""Name of the all-tasks config (``load_dataset(PATH)`` without a config name loads it)."""

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
        file_sha256: ``{shard path: sha256 hex}`` of the Parquet files; when given, every config
            gets its :func:`data_fingerprint` as ``description`` (the ``datasets`` cache key).
    """

    sources: list[SourceInfo] = field(default_factory=list)
    skipped_tasks: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    notes: list[str] = field(default_factory=list)
    file_sha256: dict[str, str] = field(default_factory=dict)


def data_fingerprint(paths: list[str], file_sha256: dict[str, str]) -> str:
    """The content fingerprint of the data files ``paths``: SHA-256 (hex) of their sorted
    ``"<path> <sha256>"`` lines.

    Args:
        paths: data files relative to the dataset folder (POSIX).
        file_sha256: ``{path: sha256 hex of the file's bytes}``.

    Raises:
        KeyError: a path without a digest in ``file_sha256``.
    """
    import hashlib

    lines = "".join(f"{p} {file_sha256[p]}\n" for p in sorted(paths))
    return hashlib.sha256(lines.encode()).hexdigest()


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
    text = rst.replace(":data:`TASKS`", "the task config names (see Tasks)").replace("``", "`")
    return text.replace("|", "\\|")


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    return [line[s : (spans[k + 1][0] if k + 1 < len(spans) else len(line))] for k, (s, _) in enumerate(spans)]


def _size_category(n: int) -> str:
    for limit, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]:
        if n < limit:
            return name
    return "n>1M"


def default_data_files(counts: dict[str, dict[str, int]],
                       files: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """The shards of the ``default`` (all tasks) config: ``{split: [path, ...]}``.

    Paths are relative to the dataset folder, the per-task shards themselves (no second copy of
    the data), tasks in :data:`~ai4va_fg_dataset.schema.TASKS` order. A split with no row in any
    task is left out (``datasets`` 5.2 cannot load an empty split); ``{}`` when nothing has rows.
    """
    out: dict[str, list[str]] = {}
    for s in SPLITS:
        paths = [p for t in TASKS if t in counts and counts[t][s] > 0 for p in files[t][s]]
        if paths:
            out[s] = paths
    return out


def card_data(counts: dict[str, dict[str, int]], files: dict[str, dict[str, list[str]]], info: CardInfo):
    """The card's YAML metadata (a ``huggingface_hub.DatasetCardData``).

    One config per task in ``counts`` and the all-tasks config :data:`DEFAULT_CONFIG`
    (``default: true``, see :func:`default_data_files`); per config only the splits that have rows
    (see :mod:`ai4va_fg_dataset.build.export` on empty splits). No config at all when ``counts`` is empty.

    Args:
        counts: ``counts[task][split]`` rows, every split listed, for tasks with samples.
        files: ``files[task][split]`` shard paths relative to the dataset folder, for the splits
            with rows.
        info: the card's other facts (the languages, and ``file_sha256`` for the configs' fingerprints).
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

    def add(name: str, split_files: dict[str, list[str]], split_rows: dict[str, int]) -> None:
        configs[name] = {"data_files": [{"split": s, "path": split_files[s]} for s in SPLITS if s in split_files]}
        if info.file_sha256:  # the datasets cache key follows the data (see the module docstring)
            fp = data_fingerprint([p for paths in split_files.values() for p in paths], info.file_sha256)
            configs[name]["description"] = f"AI4VA-FG {name}: data sha256:{fp}"
        splits = SplitDict()
        for s in SPLITS:
            if s in split_files:
                splits.add(SplitInfo(name=s, num_examples=split_rows[s]))
        infos[name] = DatasetInfo(features=schema.features(), splits=splits)

    for task in TASKS:
        if task in counts:
            add(task, {s: files[task][s] for s in SPLITS if counts[task][s] > 0}, counts[task])
    everything = default_data_files(counts, files)
    if everything:
        add(DEFAULT_CONFIG, everything, {s: sum(c[s] for c in counts.values()) for s in SPLITS})
        configs[DEFAULT_CONFIG]["default"] = True
    MetadataConfigs(configs).to_dataset_card_data(data)
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data


def card_body(counts: dict[str, dict[str, int]], info: CardInfo) -> str:
    """The Markdown body of the card (everything after the YAML front matter).

    Its ``python`` block is runnable as is once ``path/to/this/folder`` is replaced by the folder
    (the tests do so): it loads the ``default`` config, picks one task by its ``task`` column and
    loads one task's own config.
    """
    first = next((t for t in TASKS if t in counts), "panel_reordering")
    totals = {s: sum(c[s] for c in counts.values()) for s in SPLITS}
    shown = next((s for s in ("test", "validation", "train") if totals[s]), "test")
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
        (f"Without a config name, `load_dataset` returns the `{DEFAULT_CONFIG}` config: every task's rows "
         "in one table (same columns for all tasks), the `task` column naming the task of each row. "
         "Each task is also a config of its own."),
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")  # or the Hub repo id, e.g. "OWNER/ai4va-fg": all tasks',
        (f'row = ds["{shown}"][0]  # row["task"] names the task, row["image"] is a PIL image, '
         'row["bboxes"] a list of [x1, y1, x2, y2]'),
        f'one = ds.filter(lambda task: task == "{first}", input_columns="task")  # one task\'s rows',
        f'same = load_dataset("path/to/this/folder", "{first}")  # the same rows, as its own config',
        "```",
        "",
        "## Tasks",
        "",
        "| config | task | answer | grounding boxes | description |",
        "|---|---|---|---|---|",
        (f"| `{DEFAULT_CONFIG}` (no config name) | all tasks below | per task | per task | Every task's rows in "
         "one table (the same Parquet files as the task configs); the `task` column names the task. |"),
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
    parts.append(f"| `{DEFAULT_CONFIG}` (all tasks) | " + " | ".join(str(totals[s]) for s in SPLITS)
                 + f" | {sum(totals.values())} |")

    omitted = [f"- `{t}`: no samples ({info.skipped_tasks.get(t, 'not requested')}); no config is written."
               for t in TASKS if t not in counts]
    omitted += [f"- `{t}` has no `{s}` rows; the split is left out of its config."
                for t in TASKS if t in counts for s in SPLITS if counts[t][s] == 0]
    omitted += [f"- no task has `{s}` rows; the split is left out of the `{DEFAULT_CONFIG}` config."
                for s in SPLITS if counts and totals[s] == 0]
    if omitted:
        parts += ["", "### Left out", ""] + omitted
    if info.sources:
        parts += ["", "## Sources", "", "| source | pages | license | attribution |", "|---|---:|---|---|"]
        for src in info.sources:
            parts.append(f"| {src.name} | {src.pages} | {src.license or 'see source'} | {src.attribution or '-'} |")
        parts += ["", LICENSE_NOTE]
    if info.notes:
        parts += ["", "## Build notes", ""] + [f"- {n}" for n in info.notes]
    if info.file_sha256:
        fp = data_fingerprint(list(info.file_sha256), info.file_sha256)
        parts += ["", (f"Data fingerprint (SHA-256 over the Parquet files' SHA-256s): `{fp}`; each config's "
                       "own is its `description` in the YAML header, so `datasets` never serves another build's "
                       "rows from its cache.")]
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
