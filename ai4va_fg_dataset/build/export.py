"""Export generated samples as a Hub-style Parquet dataset (one config per task + ``default``).

Layout (what ``datasets.load_dataset(out_dir)`` and ``datasets.load_dataset(out_dir, task)`` read
offline, see stack.md "datasets 5.x")::

    <out_dir>/README.md                                   dataset card, YAML ``configs`` + ``dataset_info``
    <out_dir>/<task>/<split>-00000-of-0000N.parquet       shards of at most 500 rows / ~200 MB

The card's ``configs:`` has one config per task and the config ``default`` (``default: true``)
whose splits list every task's shards (the same files, no copy): all tasks share one schema, the
``task`` column tells them apart, so ``load_dataset(out_dir)`` without a config name returns every
task's rows (:mod:`ai4va_fg_dataset.build.dataset_card`).

Rows follow :mod:`ai4va_fg_dataset.schema` and are written with ``datasets`` itself
(``Features.encode_example`` + ``datasets.arrow_writer.ParquetWriter``, what ``datasets``' own
builders use), streamed row by row so memory holds one record batch per open shard, not a shard:
the ``Image()`` column is stored the ``datasets`` way (``{"bytes", "path"}`` struct with embedded
bytes) and the feature types travel in the Parquet schema metadata as well as in the card.

Images are encoded exactly once, when a sample arrives: a ``PIL.Image`` (a page with marks drawn)
becomes JPEG bytes when its source page was a JPEG scan, else PNG (see :func:`encode_image`);
``bytes`` (the untouched page file) or a path to it are stored as they are, so
JPEG pages are not decoded and re-encoded for tasks that draw nothing.

Zero-row cases (checked against ``load_dataset`` of datasets 5.2, which raises ``Instruction
"test" corresponds to no data!`` for an empty Parquet split): a split with no rows of a task is
left out of that config (and out of ``default`` when no task has rows in it), and a task with no
samples gets no config; the card says which and why.

The whole output is staged in a temporary sibling folder and moved into place with
:func:`os.replace` only when complete (:func:`staging_dir`).

Output folder safety ("nothing lost"): the builder recognises its own previous output only by the
manifest it writes last, :data:`MANIFEST` (format name, version, every file it wrote with its size
and SHA-256, the data fingerprint), never by the card's text. :func:`check_output_dir` accepts a
missing or empty ``--out``, or a previous build whose every file is listed in its manifest; it
refuses anything else (a folder with other files, a git work tree, a folder holding an input, the
working directory or one of its parents), so replacing a build removes only files the builder wrote.
Staging folders carry a locked marker (:data:`STAGING_MARKER`) so the next build of the same
``--out`` can delete those of killed builds (:func:`ai4va_fg_dataset.core.atomic_dir.remove_stale_dirs`).

Stale caches: each shard's SHA-256 goes into the card as a per-config fingerprint
(:func:`ai4va_fg_dataset.build.dataset_card.data_fingerprint`), which is part of ``datasets``' cache key.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.atomic_dir import remove_stale_dirs, replacing_dir
from ..core.images import ImageEncoder, decode_image, encode_image  # noqa: F401  (the build's codec)
from ..schema import SPLITS, TASKS, Sample, features
from .dataset_card import CardInfo, write_card

logger = logging.getLogger(__name__)

MAX_SHARD_ROWS = 500
"""Most rows in one Parquet shard."""

MAX_SHARD_BYTES = 200 * 1024 * 1024
"""Most (image + text) bytes in one Parquet shard (~200 MB, the Hub's usual shard size)."""

BATCH_BYTES = 16 * 1024 * 1024
"""Bytes of rows collected before they are written as one Parquet record batch / row group."""

BATCH_ROWS = 100
"""Most rows in one record batch (``datasets``' row-group size for image datasets)."""

BUILD_MARKER = "build_report.json"
"""The build report of :func:`ai4va_fg_dataset.build.build` (push-to-hub needs it)."""

MANIFEST = "ai4va_fg_manifest.json"
"""The builder's manifest, written last into every output folder: ``{"format": MANIFEST_FORMAT,
"version": MANIFEST_VERSION, "fingerprint": ..., "files": {path: {"bytes", "sha256"}}}``. Only a
folder with a valid manifest listing every file in it is a previous build that may be replaced
(push-to-hub uploads it with the rest: it lets anyone check the files)."""

MANIFEST_FORMAT = "ai4va-fg-build"
MANIFEST_VERSION = 1

STAGING_MARKER = ".ai4va-fg-staging.lock"
"""Marker file, locked while its writer runs, in staging folders (see :mod:`ai4va_fg_dataset.core.atomic_dir`)."""


def sample_row(sample: Sample) -> dict[str, Any]:
    """The dataset row of ``sample`` with its image encoded (see :func:`encode_image`)."""
    row = sample.to_row()
    row["image"] = encode_image(row["image"])
    return row


def _row_bytes(row: Mapping[str, Any]) -> int:
    text = sum(len(str(row[k])) for k in ("id", "question", "answer", "page_id")) + sum(map(len, row["choices"]))
    return len(row["image"]["bytes"] or b"") + text + 16 * len(row["bboxes"]) + 64


class _ShardedSplit:
    """The Parquet shards of one (task, split), streamed row by row into ``datasets``'
    ``ParquetWriter`` (a record batch every :data:`BATCH_BYTES` / :data:`BATCH_ROWS`), written as
    ``<split>-NNNNN.partial`` and renamed to ``<split>-0000i-of-0000N.parquet`` at the end."""

    def __init__(self, folder: Path, split: str, max_rows: int, max_bytes: int):
        self.folder, self.split = folder, split
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.features = features()
        self.writer = None
        self.shard_rows = self.shard_bytes = self.batch_bytes = 0
        self.partials: list[Path] = []
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        size = _row_bytes(row)
        if self.writer is not None and (self.shard_rows >= self.max_rows or self.shard_bytes + size > self.max_bytes):
            self._close_shard()
        if self.writer is None:
            from datasets.arrow_writer import ParquetWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.split}-{len(self.partials):05d}.partial"
            self.writer = ParquetWriter(path=str(path), features=self.features, writer_batch_size=BATCH_ROWS)
            self.partials.append(path)
        self.writer.write(self.features.encode_example(row))
        self.shard_rows += 1
        self.shard_bytes += size
        self.batch_bytes += size
        self.count += 1
        if self.batch_bytes >= BATCH_BYTES:
            self.writer.write_examples_on_file()
            self.batch_bytes = 0

    def _close_shard(self) -> None:
        self.writer.finalize()
        self.features = features()
        self.writer = None
        self.shard_rows = self.shard_bytes = self.batch_bytes = 0

    def abort(self) -> None:
        """Close an open shard without finishing it (the staging folder is deleted anyway)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finish(self) -> list[str]:
        """Close the last shard and rename the shards to ``<split>-0000i-of-0000N.parquet``."""
        if self.writer is not None:
            self._close_shard()
        n = len(self.partials)
        names = []
        for i, path in enumerate(self.partials):
            name = f"{self.split}-{i:05d}-of-{n:05d}.parquet"
            os.replace(path, self.folder / name)
            names.append(name)
        return names


def write_parquet(
    samples: Iterable[Sample],
    out_dir: str | os.PathLike,
    *,
    splits: Mapping[str, str],
    max_shard_rows: int = MAX_SHARD_ROWS,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, list[str]]]]:
    """Write ``samples`` as Parquet shards under ``out_dir`` (not atomic; see :func:`write_dataset`).

    Args:
        samples: the samples, streamed (each image is encoded on arrival and the sample dropped).
        out_dir: an existing folder (normally a staging folder).
        splits: ``{page_id: split}`` from :func:`ai4va_fg_dataset.build.splits.assign_splits`.

    Returns:
        ``(counts, files)``: ``counts[task][split]`` rows (every split listed, 0 included) and
        ``files[task][split]`` the shard paths relative to ``out_dir``, for tasks with rows only.

    Raises:
        ValueError: a sample whose ``page_id`` has no split, an unknown split name, or a duplicate
            sample ``id``.
    """
    out = Path(out_dir)
    writers: dict[tuple[str, str], _ShardedSplit] = {}
    seen_ids: set[str] = set()
    try:
        for sample in samples:
            if sample.id in seen_ids:
                raise ValueError(f"duplicate sample id {sample.id!r}")
            seen_ids.add(sample.id)
            split = splits.get(sample.page_id)
            if split is None:
                raise ValueError(f"sample {sample.id!r}: page {sample.page_id!r} has no split assigned")
            if split not in SPLITS:
                raise ValueError(f"sample {sample.id!r}: unknown split {split!r}; expected one of {SPLITS}")
            key = (sample.task, split)
            if key not in writers:
                writers[key] = _ShardedSplit(out / sample.task, split, max_shard_rows, max_shard_bytes)
            writers[key].add(sample_row(sample))
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    counts: dict[str, dict[str, int]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    for task in TASKS:
        if not any((task, s) in writers for s in SPLITS):
            continue
        counts[task] = {s: writers[(task, s)].count if (task, s) in writers else 0 for s in SPLITS}
        files[task] = {
            s: [f"{task}/{name}" for name in writers[(task, s)].finish()] for s in SPLITS if (task, s) in writers
        }
    return counts, files


def write_dataset(
    samples: Iterable[Sample],
    out_dir: str | os.PathLike,
    *,
    splits: Mapping[str, str],
    card: CardInfo | None = None,
    atomic: bool = True,
    **shard_options: int,
) -> dict[str, dict[str, int]]:
    """Write the Parquet dataset and its ``README.md`` card to ``out_dir``.

    Args:
        samples: generated samples (any order; streamed).
        out_dir: the dataset folder. With ``atomic=True`` (default) it is built in a temporary
            sibling folder and moved into place only when complete (:func:`staging_dir`); with
            ``atomic=False`` it must exist and is written in place (the build stages it itself).
        splits: ``{page_id: split}``.
        card: what the card says besides counts and features (sources, skipped tasks, seed).
        shard_options: ``max_shard_rows`` / ``max_shard_bytes``.

    Returns:
        ``counts[task][split]`` for every task that has samples.

    Raises:
        ValueError: see :func:`write_parquet`; ``FileExistsError``: see :func:`staging_dir`.
    """
    if atomic:
        with staging_dir(out_dir) as tmp:
            return write_dataset(samples, tmp, splits=splits, card=card, atomic=False, **shard_options)
    out = Path(out_dir)
    counts, files = write_parquet(samples, out, splits=splits, **shard_options)
    write_dataset_card(out, counts, files, card)
    return counts


def write_dataset_card(
    out_dir: str | os.PathLike,
    counts: Mapping[str, Mapping[str, int]],
    files: Mapping[str, Mapping[str, list[str]]],
    card: CardInfo | None = None,
) -> None:
    """Write the ``README.md`` card of Parquet shards already written by :func:`write_parquet`
    (its ``counts`` and ``files``), with each shard's SHA-256 as the data fingerprint. The build
    streams the shards first and writes the card once it knows what the stream held.
    """
    out = Path(out_dir)
    shards = [p for by_split in files.values() for paths in by_split.values() for p in paths]
    info = dataclasses.replace(card or CardInfo(), file_sha256={p: file_sha256(out / p) for p in shards})
    write_card(out, counts, files, info)


_DIGESTS: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks.

    Remembered per (path, inode, size, modification time), so the manifest does not hash again the
    shards the card's fingerprint already hashed.
    """
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if len(_DIGESTS) > 10_000:
            _DIGESTS.clear()
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _walk(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """``(files, folders, others)`` under ``folder`` as sorted POSIX paths: regular files, folders,
    and anything else (symlinks included, never followed)."""
    files, folders, others = [], [], []
    for root, dirs, names in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in [*dirs, *names]:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                others.append(rel)
            elif path.is_dir():
                folders.append(rel)
            elif path.is_file():
                files.append(rel)
            else:
                others.append(rel)
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return sorted(files), sorted(folders), sorted(others)


def write_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Write :data:`MANIFEST` into ``folder`` listing every file there (except the manifest and
    :data:`STAGING_MARKER`), with sizes in bytes and SHA-256; returns its content.

    ``fingerprint`` is the SHA-256 of the sorted ``"<path> <sha256>"`` lines of the Parquet files
    (the build's data; :func:`ai4va_fg_dataset.build.dataset_card.data_fingerprint`).
    """
    from .dataset_card import data_fingerprint

    root = Path(folder)
    files, _, _ = _walk(root)
    listed = {
        rel: {"bytes": (root / rel).stat().st_size, "sha256": file_sha256(root / rel)}
        for rel in files if rel not in (MANIFEST, STAGING_MARKER) and not rel.endswith(STAGING_MARKER + ".partial")
    }
    data = {rel: v["sha256"] for rel, v in listed.items() if rel.endswith(".parquet")}
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                "fingerprint": data_fingerprint(list(data), data), "files": listed}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The :data:`MANIFEST` of ``folder`` if it is one this builder wrote (right format and
    version, a ``files`` mapping of safe relative paths), else ``None`` (missing, unreadable,
    another format)."""
    path = Path(folder) / MANIFEST
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or manifest.get("version") != MANIFEST_VERSION or not isinstance(manifest.get("files"), dict):
        return None
    if not all(isinstance(p, str) and p and not p.startswith("/") and ".." not in p.split("/")
               for p in manifest["files"]):
        return None
    return manifest


def foreign_entries(folder: str | os.PathLike) -> list[str] | None:
    """What in ``folder`` the builder did not write, per its manifest (POSIX paths, sorted).

    Returns:
        ``[]`` for an empty folder or a previous build whose every file is listed in its
        :data:`MANIFEST` (folders count as listed when they hold a listed file; a leftover
        :data:`STAGING_MARKER` counts as the builder's); the unlisted files, symlinks and empty
        folders otherwise; ``None`` when the folder is not empty and has no valid manifest.
    """
    root = Path(folder)
    if not any(root.iterdir()):
        return []
    manifest = read_manifest(root)
    if manifest is None:
        return None
    listed = set(manifest["files"]) | {MANIFEST, STAGING_MARKER}
    parents = {"/".join(p.split("/")[:i]) for p in listed for i in range(1, p.count("/") + 1)}
    files, folders, others = _walk(root)
    out = [f for f in files if f not in listed] + [d for d in folders if d not in parents] + others
    return sorted(out)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_dir(out_dir: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """The absolute ``out_dir`` if it may be (re)written, else a clear refusal.

    Accepted: a missing folder, an empty one, or a previous build of this builder (a valid
    :data:`MANIFEST` listing every file in it, see :func:`foreign_entries`). Nothing else is
    ever replaced: a README mentioning AI4VA-FG does not make a folder a build.

    Args:
        out_dir: the ``--out`` folder.
        inputs: the input paths of the build (``--path``, ``--image-root``, ``--coco-mapping``).

    Raises:
        ValueError: ``out_dir`` is or contains one of ``inputs``, is or contains the current
            working directory, or is a git work tree (holds ``.git``).
        FileExistsError: ``out_dir`` exists, is not empty and is not a previous build (the message
            says why: no manifest, or which files the manifest does not list).
        NotADirectoryError: ``out_dir`` is a file.
    """
    out = Path(out_dir).absolute()
    real = Path(os.path.realpath(out))
    for item in inputs:
        path = Path(os.path.realpath(Path(item).absolute()))
        if _inside(path, real):
            raise ValueError(f"--out {out} {'is' if path == real else 'contains'} the input {item}; "
                             "the build would replace its own input: choose another --out")
    cwd = Path(os.path.realpath(Path.cwd()))
    if _inside(cwd, real):
        raise ValueError(f"--out {out} {'is' if cwd == real else 'contains'} the working directory {cwd}; "
                         "the build replaces --out whole: choose a new folder, e.g. --out build/ai4va_fg")
    if out.is_symlink() or out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"output {out} exists and is not a folder")
        if (out / ".git").exists():
            raise ValueError(f"--out {out} is a git work tree (it holds .git); the build replaces --out whole: "
                             "choose a new folder, e.g. --out build/ai4va_fg")
        foreign = foreign_entries(out)
        if foreign is None:
            older = (out / BUILD_MARKER).is_file()
            raise FileExistsError(
                f"output folder {out} exists, is not empty and is not a previous AI4VA-FG build (no {MANIFEST} "
                "manifest written by `ai4va-fg build`); nothing was changed: choose a new or empty --out"
                + (" (if it is a build of an older ai4va-fg, from before build manifests, delete it yourself)"
                   if older else "")
            )
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise FileExistsError(
                f"output folder {out} is a previous AI4VA-FG build but also holds files the build did not "
                f"write ({shown}); they would be deleted: move them out or choose another --out"
            )
    return out


@contextmanager
def staging_dir(out_dir: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``out_dir``; on success it replaces ``out_dir``.

    First ``out_dir`` is checked (:func:`check_output_dir`) and the staging folders of killed
    builds of the same ``out_dir`` are removed (only those with a :data:`STAGING_MARKER` whose
    lock is free; others are reported in the log). The staging folder is created right away, so
    an unwritable location fails here, before any work. When the block ends normally the
    :data:`MANIFEST` is written, then the folder replaces ``out_dir``.

    On an exception the temporary folder is deleted and an existing ``out_dir`` is left untouched.
    On success an existing ``out_dir`` is first renamed aside, the new folder is moved in with
    :func:`os.replace`, and the old one is deleted (restored if the move fails).

    Raises:
        FileExistsError, NotADirectoryError, ValueError: see :func:`check_output_dir`.
        OSError: the folder beside ``out_dir`` cannot be written (``PermissionError``, read-only
            file system...).
    """
    out = check_output_dir(out_dir, inputs=inputs)
    removed, kept = remove_stale_dirs(out, STAGING_MARKER)
    for folder in removed:
        logger.warning("removed %s, the staging folder of a killed build of %s", folder, out)
    for folder in kept:
        if (folder / STAGING_MARKER).is_file():
            logger.info("kept %s: the staging folder of a build still running", folder)
        else:
            logger.warning("kept %s: looks like a staging folder of %s but has no %s marker, so it is not provably "
                           "a build's (an older version's?); delete it yourself if it is", folder, out.name,
                           STAGING_MARKER)
    umask = os.umask(0)
    os.umask(umask)
    _check_writable(out)
    # the final folder gets normal permissions (mkdtemp makes it 0700)
    entered = False
    try:
        with replacing_dir(out, mode=0o777 & ~umask, marker=STAGING_MARKER) as tmp:
            entered = True
            yield tmp
            write_manifest(tmp)
    except OSError as exc:
        if entered:
            raise
        raise OSError(exc.errno, f"cannot create the build's temporary folder beside --out {out} "
                      f"({exc.strerror or exc}): choose a writable --out") from exc


def _check_writable(out: Path) -> None:
    """Raise ``PermissionError`` if an existing ``out`` (or a folder in it) cannot be emptied by
    this user: the swap would fail after the whole build, or leave the old build half deleted."""
    if not out.is_dir():
        return
    for root, dirs, _files in os.walk(out):
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"--out {out}: {root} is not writable by this user, so the previous "
                                  "build cannot be replaced: fix its permissions or choose another --out")
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]

