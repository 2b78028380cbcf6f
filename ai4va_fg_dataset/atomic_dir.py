"""Write a folder or a file atomically: fill a temporary sibling, then move it over the destination.

The developer guide's rule "results written atomically (temp file/folder, then ``os.replace``)" in
one place. Folders (:func:`replacing_dir`): the dataset export
(:func:`ai4va_fg_dataset.export.staging_dir`), the lmms-eval task overlay
(``lmms_eval_tasks.path.write_overlay``) and the tiny test checkpoint (``recipes/make_tiny_model.py``).
Files (:func:`replacing_file`): the synthetic annotations, the contact sheet, the report tables and
chart, the judge cache, distilled trajectories and benchmark figures. A reader of the destination sees
the old version or the complete new one, never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing_dir(out: str | os.PathLike, *, mode: int = 0o755) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``out``; when the ``with`` block succeeds it replaces ``out``.

    Args:
        out: the destination folder; its parent is created. An existing ``out`` is replaced whole.
        mode: permission bits of the new folder (``tempfile.mkdtemp`` makes it ``0o700``).

    * The block raises: the temporary folder is deleted, ``out`` is left untouched, the exception propagates.
    * The block succeeds: an existing ``out`` is renamed aside, the new folder is moved in with
      :func:`os.replace`, and the old one is deleted; if the move fails the old folder is put back.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, mode)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "previous")
        os.replace(tmp, out)
    except BaseException:
        if old is not None and (old / "previous").exists() and not out.exists():
            os.replace(old / "previous", out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


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
