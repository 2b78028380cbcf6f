"""``ai4va-fg review DIR``: a local Gradio app to review a built AI4VA-FG dataset in the browser.

The seeds' benchmark was verified by hand (panel positions checked after a panel-ordering model,
questions filtered manually; method.md section 2). This app serves that pass:

* **Items** tab: browse and filter the items by task, split, source, page, audit flag and review
  status; each item shows its image (with its marks) and, toggled, the grounding ``bboxes``
  (green, ``[x1, y1, x2, y2]`` pixels of the image), for reordering tasks the page's panel order as
  numbered purple boxes, and with ``--results`` every model's answer, score and its zoom crops (red).
  Accept (key ``a``), reject with a reason (``r``, then Enter) or fix the answer key (``f``, then
  Enter); ``j`` / ``k`` (or the arrow keys) move to the next / previous item. A progress count
  shows the items reviewed.
* **Panel order** tab: per page, the reading order of the algorithm
  (:func:`ai4va_fg_dataset.reading_order.reading_order`) and the annotation's (``Panel.order``)
  side by side as numbered boxes; the reviewer confirms one or types the right order (panel ids).
  The decision is an ``order`` override of that page.

Decisions go to the review file (:mod:`ai4va_fg_dataset.build.review`, written atomically beside
the annotations, never inside ``DIR``); ``ai4va-fg build --review FILE`` applies them.

Privacy: the server listens on 127.0.0.1 only, has no login, and Gradio's analytics are off
(``GRADIO_ANALYTICS_ENABLED=False``, ``analytics_enabled=False``); nothing is sent anywhere. The
theme uses system fonts (no font download).

Scale: the item index holds only the text columns, read with ``pyarrow`` (no image is decoded to
build it); an item's image is read from its Parquet row group when shown (row groups hold at most
100 rows / 16 MB, :data:`ai4va_fg_dataset.build.export.BATCH_ROWS`) and decoded alone, so a build
of 20,000 items opens in about a second and each item shows in tens of milliseconds.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere

from ..core.tool_calls import ToolCall, loads_bounded, parse_tool_calls
from ..schema import CHOICE_LETTERS, SPLITS, TASKS
from . import review as rv
from .export import BUILD_MARKER

ALL = "(all)"
STATUSES = ("unreviewed", "accept", "reject", "fix")
REORDER_TASKS = ("panel_reordering", "dialog_reordering")
"""Tasks whose items show the page's panel order (numbered boxes) when toggled."""

GROUND_COLOR = (0, 190, 60)
CROP_COLOR = (230, 20, 60)
ORDER_COLOR = (140, 40, 200)
MAX_VIEW_SIDE = 1400
"""Longest side (pixels) of an image as shown; larger images are shrunk for the browser."""

ZOOM_TAG = "ai4va_fg_zoom_trajectory"
"""Key of the zoom agent's JSON trajectory record (``lmms_eval_tasks.trajectory.TAG``), read here
without importing the evaluation package (import-layer rule)."""

TEXT_COLUMNS = ("id", "task", "question", "choices", "answer", "answer_type", "bboxes", "width", "height",
                "page_id", "source")


@dataclass
class ModelResult:
    """One model's output on one item, read from an lmms-eval ``samples_*.jsonl`` line.

    Attributes:
        model: the run's model folder name; task: the lmms-eval task name.
        answer: the model's (filtered) response text.
        scores: the item's numeric metrics (``accuracy``, ``parse_failure``, ``zoom_iou``...).
        crops: zoom boxes ``[x1, y1, x2, y2]``: page pixels from the zoom agent's record, or as the
            model wrote them in ``<tool_call>`` blocks (frame pixels) for other outputs.
    """

    model: str
    task: str
    answer: str
    scores: dict[str, float] = field(default_factory=dict)
    crops: list[list[float]] = field(default_factory=list)

    @property
    def wrong(self) -> bool:
        """True when the item's ``accuracy`` is 0."""
        return self.scores.get("accuracy") == 0.0


def _response_text(value: Any) -> str:
    while isinstance(value, list) and value:
        value = value[0]
    return "" if value is None or value == [] else str(value)


def _crops(text: str) -> list[list[float]]:
    """Zoom boxes of one output: the agent record's ``crops`` or the valid ``<tool_call>`` boxes."""
    stripped = text.strip()
    if stripped.startswith("{") and ZOOM_TAG in stripped:
        ok, obj = loads_bounded(stripped, max_chars=1 << 26, max_depth=4)
        if ok and isinstance(obj, dict) and isinstance(obj.get("crops"), list):
            return [[float(v) for v in c] for c in obj["crops"]
                    if isinstance(c, list) and len(c) == 4 and all(isinstance(v, (int, float)) for v in c)]
        if ok and isinstance(obj, dict) and isinstance(obj.get("turns"), list):
            text = "\n".join(t for t in obj["turns"] if isinstance(t, str))
    return [list(c.bbox_2d) for c in parse_tool_calls(text) if isinstance(c, ToolCall)]


def read_results(run_dir: str | os.PathLike) -> tuple[dict[str, list[ModelResult]], int]:
    """The model outputs of an lmms-eval output folder, by item id.

    Reads every ``*samples_*.jsonl`` under ``run_dir`` (lmms-eval ``--log_samples``); the item id
    is the logged ``doc["id"]`` (the dataset's ``id`` column), the model is the folder holding the
    file, the task the part of the file name after ``samples_``.

    Returns:
        ``({item id: [ModelResult, ...]}, lines without an item id)``.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist or holds no ``samples_*.jsonl``.
        ValueError: a line that is not JSON (names the file and line).
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.rglob("*samples_*.jsonl")) if run_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(f"--results {run_dir}: no lmms-eval samples_*.jsonl files (run lmms-eval "
                                "with --log_samples)")
    out: dict[str, list[ModelResult]] = {}
    unmatched = 0
    for f in files:
        task = f.stem.split("samples_", 1)[1]
        model = f.parent.name if f.parent != run_dir else run_dir.name
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{f}:{n}: not JSON ({exc.msg})") from None
                doc = rec.get("doc") if isinstance(rec.get("doc"), dict) else {}
                item = doc.get("id") or rec.get("id")
                if not isinstance(item, str):
                    unmatched += 1
                    continue
                text = _response_text(rec.get("filtered_resps") or rec.get("resps"))
                raw = _response_text(rec.get("resps")) or text
                scores = {k: float(v) for k, v in rec.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("doc_id",)}
                out.setdefault(item, []).append(ModelResult(model, task, text, scores, _crops(raw)))
    return out, unmatched


class ReviewData:
    """A built dataset's items, indexed lazily: text columns in memory, images read on demand.

    Args:
        folder: a build folder (``build_report.json`` and ``<task>/<split>-*.parquet``).

    Attributes:
        rows: one dict per item (``TEXT_COLUMNS`` plus ``split`` and the index of its Parquet
            file, row group and row in that group).
        report: the build report.

    Raises:
        FileNotFoundError: ``folder`` is not a finished build (no ``build_report.json``) or has no
            Parquet files.
    """

    def __init__(self, folder: str | os.PathLike):
        import pyarrow.parquet as pq

        self.folder = Path(folder)
        marker = self.folder / BUILD_MARKER
        if not marker.is_file():
            raise FileNotFoundError(f"{folder} is not a finished AI4VA-FG build (no {BUILD_MARKER})")
        self.report = json.loads(marker.read_text(encoding="utf-8"))
        self.files: list[Path] = []
        self.rows: list[dict[str, Any]] = []
        for task in TASKS:
            for f in sorted((self.folder / task).glob("*.parquet")):
                split = f.name.split("-", 1)[0]
                pf = pq.ParquetFile(f)
                names = set(pf.schema_arrow.names)
                extra = [c for c in ("audit", "flags") if c in names]  # audit columns where a build has them
                k = len(self.files)
                self.files.append(f)
                for g in range(pf.num_row_groups):
                    table = pf.read_row_group(g, columns=[*TEXT_COLUMNS, *extra])
                    for i, row in enumerate(table.to_pylist()):
                        row.update(split=split, _file=k, _group=g, _row=i)
                        self.rows.append(row)
        if not self.rows:
            raise FileNotFoundError(f"{folder}: no Parquet files of any task under it")
        self.by_id = {r["id"]: n for n, r in enumerate(self.rows)}

    def image_bytes(self, n: int) -> bytes:
        """The encoded image of item ``n`` (its row group's image column is read, nothing decoded)."""
        row = self.rows[n]
        table = _row_group_images(str(self.files[row["_file"]]), row["_group"])
        value = table.column("image")[row["_row"]].as_py()
        return value["bytes"] if isinstance(value, dict) else value

    def image(self, n: int):
        """Item ``n``'s image as a PIL RGB image."""
        from PIL import Image

        with Image.open(io.BytesIO(self.image_bytes(n))) as im:
            return im.convert("RGB")

    def source_paths(self) -> list[str]:
        """The annotation paths of the build's sources (``build_report.json``)."""
        return [s["path"] for s in self.report.get("sources", [])]

    @functools.cached_property
    def pages(self) -> dict[str, Any]:
        """``{page_id: Page}`` of the build's sources, loaded again with their adapters for the
        panel-order view (bad records skipped); empty (with :attr:`pages_error`) when they cannot
        be loaded."""
        from ..adapters import ADAPTERS
        from ..errors import BadRecordLog

        self.pages_error = ""
        out: dict[str, Any] = {}
        log = BadRecordLog(skip_bad=True)
        for s in self.report.get("sources", []):
            options = {k: v for k, v in s.get("options", {}).items() if k == "image_root"}
            try:
                adapter = ADAPTERS[s["name"]](**options)
                for page in adapter.load(Path(s["path"]), log=log):
                    out[page.page_id] = page
            except Exception as exc:  # noqa: BLE001 - shown in the app, the item view still works
                self.pages_error += f"{s['name']} {s['path']}: {type(exc).__name__}: {exc}\n"
        return out


@functools.lru_cache(maxsize=4)
def _row_group_images(path: str, group: int):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(group, columns=["image"])


def _shrink(image):
    scale = MAX_VIEW_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    return image, min(scale, 1.0)


def _draw_boxes(image, boxes: Sequence[Sequence[float]], color, labels: Sequence[str] = (), scale: float = 1.0,
                width: int = 3):
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(14, image.width // 40))
    for k, box in enumerate(boxes):
        x1, y1, x2, y2 = (v * scale for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        if labels:
            draw.text((x1 + 6, y1 + 4), str(labels[k]), fill=(255, 255, 255), font=font, stroke_width=3,
                      stroke_fill=color)
    return image


def panel_orders(page) -> tuple[list[str], list[str] | None]:
    """``(algorithm, annotation)`` panel-id orders of ``page``: the recursive XY-cut of
    :func:`ai4va_fg_dataset.reading_order.reading_order` in the page's direction, and the annotated
    ``Panel.order`` (``None`` when a panel has none)."""
    from ..reading_order import reading_order

    panels = list(page.panels)
    algo = [panels[i].id for i in reading_order([p.bbox for p in panels], page.reading_direction)]
    if any(p.order is None for p in panels):
        return algo, None
    return algo, [p.id for p in sorted(panels, key=lambda p: p.order)]


def draw_order(page, order: Sequence[str] | None):
    """The page image with its panels as numbered boxes in ``order`` (panel ids), shrunk for view."""
    from PIL import Image

    with Image.open(page.image_path) as im:
        image = im.convert("RGB")
    image, scale = _shrink(image)
    if order:
        boxes = {p.id: p.bbox for p in page.panels}
        _draw_boxes(image, [boxes[i] for i in order], ORDER_COLOR,
                    [f"{k + 1} ({i})" for k, i in enumerate(order)], scale, width=4)
    return image


class ReviewSession:
    """The app's state shared by the browser sessions: the data, the decisions, the results.

    Args:
        folder: the build folder.
        review_file: where decisions are written (default: :func:`rv.default_review_path` of the
            build's sources); refused inside ``folder``.
        results: an lmms-eval output folder (:func:`read_results`) or ``None``.
        reviewer: name written with each decision.

    Raises:
        FileNotFoundError: not a build, or no results in ``results``.
        ValueError: the review file is inside the build folder.
        rv.ReviewFileError: the existing review file has a bad line.
    """

    def __init__(self, folder: str | os.PathLike, *, review_file: str | os.PathLike | None = None,
                 results: str | os.PathLike | None = None, reviewer: str = ""):
        self.data = ReviewData(folder)
        path = review_file or rv.default_review_path(self.data.source_paths())
        self.review_file = rv.check_review_location(path, folder)
        self.reviewer = reviewer
        self.lock = threading.Lock()
        decisions = rv.read_review(self.review_file) if self.review_file.exists() else []
        self.latest = rv.latest(decisions)
        self.results, self.unmatched_results = read_results(results) if results else ({}, 0)

    def status(self, item_id: str) -> str:
        """``unreviewed`` or the last verdict of the item."""
        d = self.latest.get(("item", item_id))
        return d.verdict if d else "unreviewed"

    def flags(self, row: dict[str, Any]) -> list[str]:
        """Audit flags of an item: the build's own ``audit`` / ``flags`` column, ``model wrong`` /
        ``model parse failure`` from the results, ``page order overridden`` by a reviewer."""
        out = []
        for col in ("audit", "flags"):
            v = row.get(col)
            out += [str(x) for x in v] if isinstance(v, list) else ([str(v)] if v else [])
        res = self.results.get(row["id"], [])
        if any(r.wrong for r in res):
            out.append("model wrong")
        if any(r.scores.get("parse_failure") for r in res):
            out.append("model parse failure")
        if ("page", row["page_id"]) in self.latest:
            out.append("page order overridden")
        return out

    def record(self, decision: rv.Decision) -> None:
        """Append ``decision`` to the review file (atomic rewrite) and remember it."""
        with self.lock:
            rv.append_decision(self.review_file, decision)
            self.latest[(decision.target, decision.id)] = decision

    def select(self, task: str = ALL, split: str = ALL, source: str = ALL, page: str = "", flag: str = ALL,
               status: str = ALL) -> list[int]:
        """Indices of the items matching the filters (``ALL`` / empty: no filter; ``page`` matches
        a substring of the page id)."""
        page = (page or "").strip()
        out = []
        for n, r in enumerate(self.data.rows):
            if ((task == ALL or r["task"] == task) and (split == ALL or r["split"] == split)
                    and (source == ALL or r["source"] == source) and (not page or page in r["page_id"])
                    and (status == ALL or self.status(r["id"]) == status)
                    and (flag == ALL or flag in self.flags(r))):
                out.append(n)
        return out

    def progress(self, selected: Sequence[int]) -> str:
        """Markdown progress line: items reviewed overall and in the current selection."""
        done = sum(1 for r in self.data.rows if ("item", r["id"]) in self.latest)
        sel = sum(1 for n in selected if ("item", self.data.rows[n]["id"]) in self.latest)
        counts = Counter(d.verdict for (t, _), d in self.latest.items() if t == "item")
        return (f"**Reviewed {done} / {len(self.data.rows)}** items (this filter: {sel} / {len(selected)}) - "
                f"accepted {counts['accept']}, rejected {counts['reject']}, fixed {counts['fix']}; "
                f"page orders {sum(1 for t, _ in self.latest if t == 'page')}. Review file: `{self.review_file}`")

    def render(self, n: int, show_boxes: bool = True, show_order: bool = True):
        """The image of item ``n`` with the overlays switched on (grounding boxes, model crops,
        the page's panel order for reordering tasks), shrunk to :data:`MAX_VIEW_SIDE`."""
        row = self.data.rows[n]
        image, scale = _shrink(self.data.image(n))
        if show_order and row["task"] in REORDER_TASKS:
            page = self.data.pages.get(row["page_id"])
            if page is not None and page.panels:
                d = self.latest.get(("page", row["page_id"]))
                order = d.value if d else (panel_orders(page)[1] or panel_orders(page)[0])
                boxes = {p.id: p.bbox for p in page.panels}
                _draw_boxes(image, [boxes[i] for i in order if i in boxes], ORDER_COLOR,
                            [str(k + 1) for k, i in enumerate(order) if i in boxes], scale)
        if show_boxes:
            _draw_boxes(image, row["bboxes"] or [], GROUND_COLOR, scale=scale)
            for res in self.results.get(row["id"], []):
                _draw_boxes(image, res.crops, CROP_COLOR, [f"{res.model} {k + 1}" for k in range(len(res.crops))],
                            scale)
        return image

    def describe(self, n: int) -> str:
        """Markdown of item ``n``: id, status, question, choices with the key marked, results."""
        r = self.data.rows[n]
        d = self.latest.get(("item", r["id"]))
        status = "unreviewed" if d is None else d.verdict + (f" ({d.reason})" if d.reason else "") + (
            f" -> key {d.value}" if d.verdict == "fix" else "")
        where = (f"task **{r['task']}** | split **{r['split']}** | source **{r['source']}** | "
                 f"page `{r['page_id']}` | status **{status}**")
        lines = [f"### `{r['id']}`", where, "", r["question"], ""]
        for letter, choice in zip(CHOICE_LETTERS, r["choices"] or []):
            mark = " **<- key**" if letter == r["answer"] else ""
            lines.append(f"- **{letter}**. {choice}{mark}")
        if not r["choices"]:
            lines.append(f"key: **{r['answer']}**")
        lines.append(f"\n{len(r['bboxes'] or [])} grounding box(es) (green)")
        flags = self.flags(r)
        if flags:
            lines.append("flags: " + ", ".join(flags))
        for res in self.results.get(r["id"], []):
            score = ", ".join(f"{k} {v:g}" for k, v in sorted(res.scores.items()))
            answer = res.answer if len(res.answer) < 400 else res.answer[:400] + "..."
            lines.append(f"\n**{res.model}** ({res.task}): {score}; {len(res.crops)} crop(s) (red)\n\n"
                         f"```\n{answer}\n```")
        return "\n".join(lines)


KEYS_JS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target; const tag = (t && t.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || e.ctrlKey || e.metaKey || e.altKey) return;
  const click = (id) => { const b = document.getElementById(id); if (b) { b.click(); e.preventDefault(); } };
  const focus = (id) => { const f = document.querySelector('#' + id + ' textarea, #' + id + ' input');
                          if (f) { f.focus(); e.preventDefault(); } };
  if (e.key === 'a') click('accept-btn');
  else if (e.key === 'r') focus('reason-box');
  else if (e.key === 'f') focus('fix-box');
  else if (e.key === 'j' || e.key === 'ArrowRight') click('next-btn');
  else if (e.key === 'k' || e.key === 'ArrowLeft') click('prev-btn');
});
</script>
"""
"""Keyboard shortcuts (ignored while typing in a text box): a accept, r reason box (Enter
rejects), f fix box (Enter fixes), j / k next / previous."""


def create_app(session: ReviewSession):
    """The Gradio ``Blocks`` of the review app over ``session`` (not launched)."""
    import gradio as gr

    data = session.data
    tasks = [ALL, *[t for t in TASKS if any(r["task"] == t for r in data.rows)]]
    sources = [ALL, *sorted({r["source"] for r in data.rows})]
    flag_values = sorted({f for r in data.rows for f in session.flags(r)} | {"page order overridden"}
                         | ({"model wrong", "model parse failure"} if session.results else set()))

    def view(selected: list[int], pos: int, show_boxes: bool, show_order: bool):
        if not selected:
            return None, "No item matches the filters.", session.progress(selected), "0 / 0", 0
        pos = max(0, min(int(pos or 0), len(selected) - 1))
        n = selected[pos]
        return (session.render(n, show_boxes, show_order), session.describe(n), session.progress(selected),
                f"{pos + 1} / {len(selected)}", pos)

    def refilter(task, split, source, page, flag, status, show_boxes, show_order):
        selected = session.select(task, split, source, page, flag, status)
        return (selected, *view(selected, 0, show_boxes, show_order))

    def move(selected, pos, step, show_boxes, show_order):
        return view(selected, int(pos or 0) + step, show_boxes, show_order)

    def decide(verdict: str, selected, pos, reason, fix, show_boxes, show_order):
        if not selected:
            return (*view(selected, pos, show_boxes, show_order), reason, fix)
        row = data.rows[selected[int(pos)]]
        try:
            value = fix.strip() if verdict == "fix" else None
            d = rv.make_decision("item", row["id"], verdict, reason=reason if verdict != "accept" else None,
                                 value=value, reviewer=session.reviewer)
            if verdict == "fix":
                from ..schema import Sample  # the key must fit the item, as the build will check

                sample = Sample(id=row["id"], task=row["task"], image=b"", question=row["question"],
                                answer=row["answer"], answer_type=row["answer_type"], page_id=row["page_id"],
                                source=row["source"], width=row["width"], height=row["height"],
                                choices=row["choices"] or [])
                key = rv.check_fix(d, sample)
                # choice items: store the option text, which a rebuild that reorders the options keeps
                text = sample.choices[CHOICE_LETTERS.index(key)] if sample.answer_type == "choice" else key
                d = rv.make_decision("item", row["id"], "fix", reason=d.reason, value=text, reviewer=session.reviewer)
        except ValueError as exc:
            gr.Warning(str(exc))
            return (*view(selected, pos, show_boxes, show_order), reason, fix)
        session.record(d)
        gr.Info(f"{verdict}: {row['id']}")
        return (*view(selected, int(pos) + 1, show_boxes, show_order), "", "")

    # ---- panel-order tab
    # pages of panel items first (the ones whose panel order matters), then the rest
    panel_pages = {r["page_id"] for r in data.rows if r["task"] == "panel_reordering"}
    built_pages = sorted({r["page_id"] for r in data.rows}, key=lambda p: (p not in panel_pages, p))

    def page_view(page_id):
        page = data.pages.get(page_id)
        if page is None:
            why = data.pages_error or "its annotations were not found (run from the folder the build ran in)"
            return None, None, f"Page `{page_id}` cannot be shown: {why}", ""
        algo, annotated = panel_orders(page)
        d = session.latest.get(("page", page_id))
        text = [f"### `{page_id}` ({len(page.panels)} panels, {page.reading_direction})",
                f"- algorithm (XY-cut): `{', '.join(algo)}`",
                f"- annotation: `{', '.join(annotated)}`" if annotated else "- annotation: no reading order annotated"]
        if d:
            text.append(f"- **reviewed order**: `{', '.join(d.value)}` ({d.reviewer or 'anonymous'}, {d.time})")
        if annotated and annotated != algo:
            text.append("\n**The two orders differ**: confirm one or type the right order.")
        return (draw_order(page, algo), draw_order(page, annotated), "\n".join(text),
                ", ".join(d.value if d else (annotated or algo)))

    def save_order(page_id, order_text, which):
        page = data.pages.get(page_id)
        if page is None:
            gr.Warning(f"page {page_id} is not loaded")
            return page_view(page_id)
        algo, annotated = panel_orders(page)
        if which == "algorithm":
            order = algo
        elif which == "annotation":
            if annotated is None:
                gr.Warning("the annotation has no reading order for this page")
                return page_view(page_id)
            order = annotated
        else:
            order = [t.strip() for t in order_text.replace(";", ",").split(",") if t.strip()]
        ids = [p.id for p in page.panels]
        if sorted(order) != sorted(ids):
            gr.Warning(f"the order must list every panel id of the page once: {ids}")
            return page_view(page_id)
        session.record(rv.make_decision("page", page_id, "order", value=order, reviewer=session.reviewer,
                                        reason=f"confirmed {which} order" if which != "typed" else None))
        gr.Info(f"order of {page_id} saved")
        return page_view(page_id)

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    with gr.Blocks(title="AI4VA-FG review", analytics_enabled=False) as app:
        app._ai4va_launch = {"head": KEYS_JS, "theme": theme}
        selected = gr.State(session.select())
        gr.Markdown(f"## AI4VA-FG review: `{data.folder}` ({len(data.rows)} items)")
        with gr.Tab("Items"):
            with gr.Row():
                f_task = gr.Dropdown(tasks, value=ALL, label="task", elem_id="f-task")
                f_split = gr.Dropdown([ALL, *SPLITS], value=ALL, label="split", elem_id="f-split")
                f_source = gr.Dropdown(sources, value=ALL, label="source", elem_id="f-source")
                f_page = gr.Textbox(label="page id contains", elem_id="f-page")
                f_flag = gr.Dropdown([ALL, *flag_values], value=ALL, label="audit flag", elem_id="f-flag")
                f_status = gr.Dropdown([ALL, *STATUSES], value=ALL, label="review status", elem_id="f-status")
            progress = gr.Markdown(elem_id="progress")
            with gr.Row():
                prev_btn = gr.Button("< prev (k)", elem_id="prev-btn", size="sm")
                where = gr.Markdown(elem_id="where")
                next_btn = gr.Button("next (j) >", elem_id="next-btn", size="sm")
                show_boxes = gr.Checkbox(True, label="grounding boxes / crops", elem_id="show-boxes")
                show_order = gr.Checkbox(True, label="panel order", elem_id="show-order")
            pos = gr.Number(0, visible=False, precision=0)
            with gr.Row():
                image = gr.Image(type="pil", label="item", interactive=False, elem_id="item-image", scale=3,
                                 format="jpeg")
                with gr.Column(scale=2):
                    info = gr.Markdown(elem_id="item-info")
                    accept_btn = gr.Button("Accept (a)", variant="primary", elem_id="accept-btn")
                    reason = gr.Textbox(label="reject reason (r, Enter rejects)", elem_id="reason-box")
                    reject_btn = gr.Button("Reject", variant="stop", elem_id="reject-btn")
                    fix = gr.Textbox(label="fixed answer key (f, Enter fixes)", elem_id="fix-box")
                    fix_btn = gr.Button("Fix key", elem_id="fix-btn")
        with gr.Tab("Panel order", elem_id="order-tab"):
            page_pick = gr.Dropdown(built_pages, value=built_pages[0] if built_pages else None, label="page",
                                    elem_id="order-page")
            order_info = gr.Markdown(elem_id="order-info")
            with gr.Row():
                algo_img = gr.Image(type="pil", label="algorithm order", interactive=False, format="jpeg")
                annot_img = gr.Image(type="pil", label="annotation order", interactive=False, format="jpeg")
            with gr.Row():
                use_algo = gr.Button("Use algorithm order", elem_id="use-algo")
                use_annot = gr.Button("Use annotation order", elem_id="use-annot")
            order_text = gr.Textbox(label="right order: panel ids, comma separated (Enter saves)", elem_id="order-box")
            save_btn = gr.Button("Save typed order", variant="primary", elem_id="save-order")

        filters = [f_task, f_split, f_source, f_page, f_flag, f_status, show_boxes, show_order]
        shown = [image, info, progress, where, pos]
        for comp in (f_task, f_split, f_source, f_flag, f_status):
            comp.change(refilter, filters, [selected, *shown])
        f_page.submit(refilter, filters, [selected, *shown])
        for comp in (show_boxes, show_order):
            comp.change(view, [selected, pos, show_boxes, show_order], shown)
        prev_btn.click(lambda s, p, b, o: move(s, p, -1, b, o), [selected, pos, show_boxes, show_order], shown)
        next_btn.click(lambda s, p, b, o: move(s, p, 1, b, o), [selected, pos, show_boxes, show_order], shown)
        args = [selected, pos, reason, fix, show_boxes, show_order]
        accept_btn.click(functools.partial(decide, "accept"), args, [*shown, reason, fix])
        for trigger in (reject_btn.click, reason.submit):
            trigger(functools.partial(decide, "reject"), args, [*shown, reason, fix])
        for trigger in (fix_btn.click, fix.submit):
            trigger(functools.partial(decide, "fix"), args, [*shown, reason, fix])
        page_out = [algo_img, annot_img, order_info, order_text]
        page_pick.change(page_view, [page_pick], page_out)
        use_algo.click(lambda p, t: save_order(p, t, "algorithm"), [page_pick, order_text], page_out)
        use_annot.click(lambda p, t: save_order(p, t, "annotation"), [page_pick, order_text], page_out)
        for trigger in (save_btn.click, order_text.submit):
            trigger(lambda p, t: save_order(p, t, "typed"), [page_pick, order_text], page_out)
        app.load(view, [selected, pos, show_boxes, show_order], shown)
        if built_pages:
            app.load(page_view, [page_pick], page_out)
    return app


def launch(app, *, port: int | None = None, block: bool = True):
    """Serve ``app`` on 127.0.0.1 (``port``; ``None``: Gradio picks a free one from 7860), no
    login, no share link, no server-side rendering; returns ``(app, local_url)`` when
    ``block=False``."""
    extra = getattr(app, "_ai4va_launch", {})
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=port, share=False, inbrowser=False,
                           prevent_thread_lock=not block, quiet=True, ssr_mode=False, mcp_server=False,
                           footer_links=[], enable_monitoring=False, **extra)
    return app, url


def serve(folder: str | os.PathLike, *, results: str | os.PathLike | None = None,
          review_file: str | os.PathLike | None = None, port: int | None = None, reviewer: str = "") -> None:
    """``ai4va-fg review``: build the session and app, print the review file and serve until Ctrl-C.

    Raises:
        FileNotFoundError, ValueError, rv.ReviewFileError: see :class:`ReviewSession`.
    """
    session = ReviewSession(folder, review_file=review_file, results=results, reviewer=reviewer)
    print(f"reviewing {len(session.data.rows)} items of {folder}; decisions go to {session.review_file}")
    if session.unmatched_results:
        print(f"{session.unmatched_results} result lines name no item id (doc['id']) and are not shown")
    app, url = launch(create_app(session), port=port, block=False)
    print(f"open {url} in a browser (Ctrl-C stops)", flush=True)
    app.block_thread()

