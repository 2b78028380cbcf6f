"""Write a folder or a file atomically: fill a temporary sibling, then move it over the destination.

The developer guide's rule "results written atomically (temp file/folder, then ``os.replace``)" in
one place. Folders (:func:`replacing_dir`): the dataset export
(:func:`ai4va_fg_dataset.build.export.staging_dir`), the lmms-eval task overlay
(``lmms_eval_tasks.path.write_overlay``) and the tiny test checkpoint (``recipes/make_tiny_model.py``).
Files (:func:`replacing_file`): the synthetic annotations, the contact sheet, the report tables and
chart, the judge cache, distilled trajectories and benchmark figures. A reader of the destination sees
the old version or the complete new one, never a half-written one.

Leftovers of killed writers: a process killed inside :func:`replacing_dir` leaves its temporary
``.<name>.tmp-*`` (or ``.<name>.old-*``) sibling behind. With ``marker=NAME`` the writer puts a file
``NAME`` in each folder it creates and holds an exclusive ``flock`` on it until it is done; the lock
dies with the process, so :func:`remove_stale_dirs` can prove that a leftover was made by such a
writer (the marker is there) and that no live process uses it (the lock can be taken), and only
then deletes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:  # POSIX only; without it leftovers are never removed (their owner cannot be proved dead)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


def _hold_marker(path: Path) -> int:
    """Create the marker file ``path`` (pid, host, start time inside, for people) and hold an
    exclusive lock on it; returns the open descriptor (closing it releases the lock)."""
    partial = path.with_name(path.name + ".partial")  # locked before it gets its name: never seen unlocked
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.replace(partial, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_empty(folders: list[Path]) -> None:
    """``rmdir`` each of ``folders`` (deepest first) that is still empty; others are left alone."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


@contextmanager
def replacing_dir(out: str | os.PathLike, *, mode: int = 0o755, marker: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``out``; when the ``with`` block succeeds it replaces ``out``.

    Args:
        out: the destination folder; its parent is created. An existing ``out`` is replaced whole
            (the caller decides whether it may be: see :func:`ai4va_fg_dataset.build.export.check_output_dir`).
        mode: permission bits of the new folder (``tempfile.mkdtemp`` makes it ``0o700``).
        marker: file name of the ownership marker put (and locked) in the temporary folder and in the
            folder the old ``out`` is moved aside to, for :func:`remove_stale_dirs`; it is deleted from
            ``out`` after the move. ``None``: no marker.

    * The block raises: the temporary folder is deleted, ``out`` is left untouched, parent folders
      created for ``out`` are removed again, the exception propagates.
    * The block succeeds: an existing ``out`` is renamed aside, the new folder is moved in with
      :func:`os.replace`, and the old one is deleted; if the move fails the old folder is put back.

    Raises:
        OSError: the parent of ``out`` cannot be created or written (raised before the block runs,
            e.g. ``PermissionError`` or ``OSError(EROFS)`` for a read-only location).
    """
    out = Path(out)
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # deepest first
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except BaseException:
        _remove_empty(created)
        raise
    held: list[int] = []
    try:
        if marker:
            held.append(_hold_marker(tmp / marker))
        os.chmod(tmp, mode)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _close_all(held)
        _remove_empty(created)  # a failed write leaves no new empty parent folders either
        raise
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            if marker:
                held.append(_hold_marker(old / marker))
            os.replace(out, old / "previous")
        os.replace(tmp, out)
        if marker:
            (out / marker).unlink(missing_ok=True)
    except BaseException:
        if old is not None and (old / "previous").exists() and not out.exists():
            os.replace(old / "previous", out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _close_all(held)


def stale_candidates(out: str | os.PathLike) -> list[Path]:
    """The ``.<name>.tmp-*`` / ``.<name>.old-*`` folders beside ``out`` (whoever made them), sorted."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    found = [p for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*") for p in out.parent.glob(pattern)]
    return sorted(p for p in found if p.is_dir() and not p.is_symlink())


def remove_stale_dirs(out: str | os.PathLike, marker: str) -> tuple[list[Path], list[Path]]:
    """Delete the leftovers of killed :func:`replacing_dir` writers of ``out`` that are provably stale.

    A leftover (see :func:`stale_candidates`) is deleted only when it holds the file ``marker``
    (so a ``replacing_dir(out, marker=marker)`` made it) and that file's lock can be taken (so the
    process that made it is gone: the lock is released when a process dies, even by ``kill -9``).
    Everything else is kept: a folder without the marker (made by someone else, or by an older
    version) and one whose writer is still running.

    Returns:
        ``(removed, kept)``: the folders deleted and the candidates left alone.
    """
    removed: list[Path] = []
    kept: list[Path] = []
    for folder in stale_candidates(out):
        path = folder / marker
        if fcntl is None or not path.is_file() or path.is_symlink():
            kept.append(folder)
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            kept.append(folder)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live writer
            os.close(fd)
            kept.append(folder)
            continue
        try:
            shutil.rmtree(folder)
            removed.append(folder)
        except OSError as exc:
            logger.warning("could not remove stale temporary folder %s: %s", folder, exc)
            kept.append(folder)
        finally:
            os.close(fd)
    return removed, kept


@contextmanager
def replacing_file(out: str | os.PathLike, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path next to ``out`` to write; when the ``with`` block succeeds it replaces ``out``.

    Args:
        out: the destination file; its parent folder is created.
        mode: permission bits of the new file (``tempfile.mkstemp`` makes it ``0o600``).

    * The block raises: the temporary file is deleted, ``out`` is left untouched, the exception propagates.
    * The block succeeds: the file is moved over ``out`` with :func:`os.replace` (atomic on one filesystem).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
