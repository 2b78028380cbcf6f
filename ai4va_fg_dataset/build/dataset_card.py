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

from dataclasses import dataclass, field
from pathlib import Path

from .. import schema
from ..schema import COLUMNS, SPLITS, TASK_TITLES, TASKS
from ..tasks.spec import get_task

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

def task_row(task: str) -> tuple[str, str, str, str]:
    """``(answer, scope / skill, grounding boxes, description)`` of ``task`` for the card's task
    table, from its declaration (:func:`ai4va_fg_dataset.tasks.spec.get_task`; method.md section 2,
    thesis Table 3.1).

    Raises:
        KeyError: ``task`` is not registered.
    """
    spec = get_task(task)
    answer = {"choice": f"{spec.n_choices} choices", "number": "number", "open": "open (LLM judge)"}[spec.answer_type]
    return answer, f"{spec.panel_scope}-panel {spec.skill}", spec.grounding or "none", spec.description


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
        review: the human review applied (``ReviewSummary.to_json()`` of
            :mod:`ai4va_fg_dataset.build.review`: per-task reviewed / accepted / rejected / fixed
            counts, pages reordered, decisions not found); ``None``: no review file.
        audit: the blind-baseline audit of the build (:func:`ai4va_fg_dataset.build.audit.run_audit`);
            ``None``: not run.
        exclusions: ``{source: {task: pages}}`` excluded because their annotated order disagrees
            with the checked order (:mod:`ai4va_fg_dataset.build.audit`).
        keep_unchecked: the build kept those pages (``--keep-unchecked``).
    """

    sources: list[SourceInfo] = field(default_factory=list)
    skipped_tasks: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    notes: list[str] = field(default_factory=list)
    file_sha256: dict[str, str] = field(default_factory=dict)
    review: dict | None = None
    audit: dict | None = None
    exclusions: dict[str, dict[str, int]] = field(default_factory=dict)
    keep_unchecked: bool = False


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
    """The columns of :data:`ai4va_fg_dataset.schema.COLUMNS` as a Markdown table."""
    out = ["| column | type | meaning |", "|---|---|---|"]
    out += [f"| {name} | {kind} | {text.replace('|', chr(92) + '|')} |" for name, kind, text in COLUMNS]
    return "\n".join(out)


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
        "A fine-grained comic understanding benchmark for vision-language models: visual "
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
        "| config | task | answer | question | grounding boxes | description |",
        "|---|---|---|---|---|---|",
        (f"| `{DEFAULT_CONFIG}` (no config name) | all tasks below | per task | per task | per task | Every task's rows in "
         "one table (the same Parquet files as the task configs); the `task` column names the task. |"),
    ]
    for task in TASKS:
        answer, kind, boxes, text = task_row(task)
        name = f"`{task}`" if task in counts else f"`{task}` (not built)"
        parts.append(f"| {name} | {TASK_TITLES[task]} | {answer} | {kind} | {boxes} | {text} |")
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
    if info.review is not None:
        parts += _review_section(info.review)
    if info.audit is not None or info.exclusions or info.keep_unchecked:
        parts += _validity_section(info, counts)
    if info.notes:
        parts += ["", "## Build notes", ""] + [f"- {n}" for n in info.notes]
    if info.file_sha256:
        fp = data_fingerprint(list(info.file_sha256), info.file_sha256)
        parts += ["", (f"Data fingerprint (SHA-256 over the Parquet files' SHA-256s): `{fp}`; each config's "
                       "own is its `description` in the YAML header, so `datasets` never serves another build's "
                       "rows from its cache.")]
    parts += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(parts)


def _validity_section(info: CardInfo, counts: dict[str, dict[str, int]]) -> list[str]:
    """The card's "Item validity" section: checked keys (pages excluded per source), the dialog
    text note and the blind-baseline audit table (issue 8)."""
    parts = ["", "## Item validity", ""]
    if info.keep_unchecked:
        parts.append("Answer keys were **not** cross-checked (`--keep-unchecked`): panel and dialog items of "
                     "pages whose annotated order disagrees with the estimated reading order are included.")
    else:
        parts.append("Order keys are checked, not trusted: a page's annotated panel order must equal the "
                     "builder's reading-order estimate, and its balloon order must agree with the balloon "
                     "geometry; pages where they disagree give no panel / dialog items (listed with the reason "
                     "in `build_report.json`, `excluded`).")
        if info.exclusions:
            parts += ["", "| source | task | pages excluded |", "|---|---|---:|"]
            for src, per_task in info.exclusions.items():
                parts += [f"| {src} | `{task}` | {n} |" for task, n in sorted(per_task.items())]
        else:
            parts.append("No page was excluded.")
    if "dialog_reordering" in counts and any("mimi" in src.name for src in info.sources):
        parts += ["", ("`dialog_reordering` gives the lines in the question; its image is the page. Mimi & Eunice "
                       "strips are published with their lettering erased: their image is the strip with every line "
                       "re-rendered into its balloon rectangle in the strip's own font (Nina Improved), so the image "
                       "carries the text as in the published strips.")]
    if info.audit is not None:
        from .audit import audit_markdown

        parts += ["", "### Blind baselines", "", audit_markdown(info.audit).rstrip()]
    return parts


def _review_section(review: dict) -> list[str]:
    """The card's "Human review" section: items reviewed / rejected / fixed per task."""
    per_task = review.get("per_task", {})
    parts = ["", "## Human review", "",
             ("Items were checked by a person with `ai4va-fg review`; the build applied the review file "
              f"`{Path(review.get('file', '')).name}`: rejected items are left out, fixed answer keys are used. "
              "The counts below are of this build's items (rejected ones are not in the counts above)."), "",
             "| config | reviewed | accepted | rejected | fixed |", "|---|---:|---:|---:|---:|"]
    for task in TASKS:
        if task in per_task:
            c = per_task[task]
            parts.append(f"| `{task}` | {c['reviewed']} | {c['accepted']} | {c['rejected']} | {c['fixed']} |")
    totals = {k: sum(c[k] for c in per_task.values()) for k in ("reviewed", "accepted", "rejected", "fixed")}
    parts.append(f"| all | {totals['reviewed']} | {totals['accepted']} | {totals['rejected']} | {totals['fixed']} |")
    parts += ["", f"Panel order overridden by the reviewer on {len(review.get('pages_reordered', []))} page(s)."]
    if review.get("missing"):
        parts.append(f"{len(review['missing'])} review decision(s) named items or pages not in this build "
                     "(listed in `build_report.json`).")
    return parts


def write_card(out_dir: Path, counts: dict[str, dict[str, int]], files: dict[str, dict[str, list[str]]],
               info: CardInfo) -> Path:
    """Write ``out_dir/README.md`` (YAML front matter + body); returns its path."""
    from huggingface_hub import DatasetCard

    data = card_data(counts, files, info)
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_body(counts, info)}")
    path = Path(out_dir) / "README.md"
    card.save(str(path))
    return path
