"""The build's page list, kept on disk: memory does not grow with the number of pages (issue 13).

A build looks at every page several times (the splits, each task generator's
:meth:`~ai4va_fg_dataset.tasks.base.TaskGenerator.prepare`, the per-page work, the bad-record
report), so it needs a page *list*, not a one-pass stream. Held in memory, that list (annotations,
polygons, transcripts: tens of KB per page) was what still grew with the number of pages once the
samples were streamed into the shards. :class:`PageStore` is that list written to an anonymous
temporary file (:func:`tempfile.TemporaryFile`: no name, removed by the OS when closed, even if the
build is killed), one pickle per page; memory holds only two integers per page. Reading a page back
is an :func:`os.pread` of its bytes and one ``pickle.loads``; iterations are independent (no shared
file position), so the build may read the store while it iterates it.

The same pickles are what :func:`ai4va_fg_dataset.build.parallel.run_pages` sends to its worker
processes, so nothing is pickled twice.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Self, overload

from ..page import Page


class SpillFile:
    """Byte records appended to an anonymous temporary file and read back by index.

    :func:`tempfile.TemporaryFile` has no name and is removed by the OS when closed (or when the
    process ends, even killed); memory holds two integers per record. Reads are :func:`os.pread` at
    the record's offset, so iterations never share a file position.

    Args:
        prefix: prefix of the temporary file (shown by ``lsof``).
        dir: folder of the file (default: :func:`tempfile.gettempdir`).

    Raises:
        IndexError: :meth:`get` out of range.
        ValueError: any use after :meth:`close`.
    """

    def __init__(self, prefix: str = "ai4va-fg-", dir: str | os.PathLike | None = None):
        # closed by close() / garbage collection: the file lives as long as this object
        self._file = tempfile.TemporaryFile(prefix=prefix, dir=dir)  # noqa: SIM115
        self._offsets = array("q")
        self._lengths = array("q")
        self._end = 0
        self._lock = threading.Lock()  # appends only; reads are positionless

    def append(self, data: bytes) -> None:
        """Add one record."""
        with self._lock:
            self._check_open()
            fd, written = self._file.fileno(), 0
            while written < len(data):
                written += os.pwrite(fd, memoryview(data)[written:], self._end + written)
            self._offsets.append(self._end)
            self._lengths.append(len(data))
            self._end += len(data)

    def get(self, index: int) -> bytes:
        """Record ``index`` (negative counts from the end)."""
        self._check_open()
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"record index {index} out of range for {len(self)} records")
        offset, length = self._offsets[index], self._lengths[index]
        fd, parts, got = self._file.fileno(), [], 0
        while got < length:
            chunk = os.pread(fd, length - got, offset + got)
            if not chunk:
                raise OSError(f"spill file ended at byte {offset + got}; record {index} needs {length} bytes")
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def __len__(self) -> int:
        return len(self._offsets)

    def close(self) -> None:
        """Remove the file (idempotent)."""
        self._file.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file.closed

    def _check_open(self) -> None:
        if self._file.closed:
            raise ValueError("the spill file is closed")


class PageStore(Sequence[Page]):
    """A read-back sequence of :class:`~ai4va_fg_dataset.page.Page` pickled to a :class:`SpillFile`.

    Build it with :meth:`append` / :meth:`extend`, then use it as a ``Sequence[Page]`` (``len``,
    ``store[i]``, iteration in insertion order). Close it (or use it as a context manager) to free
    the file; it is also freed when the object is garbage-collected.

    Memory: 16 bytes per page (offset and length); the pickles live in the file (the OS page cache
    may keep them, outside the process's RSS).

    Args:
        pages: pages to append at once (optional).
        dir: folder of the temporary file (default: :func:`tempfile.gettempdir`).

    Raises:
        IndexError: ``store[i]`` out of range.
        ValueError: any use after :meth:`close`.
    """

    def __init__(self, pages: Iterable[Page] = (), *, dir: str | os.PathLike | None = None):
        self._records = SpillFile("ai4va-fg-pages-", dir)
        self.extend(pages)

    def append(self, page: Page) -> None:
        """Add ``page`` at the end."""
        self._records.append(pickle.dumps(page, protocol=pickle.HIGHEST_PROTOCOL))

    def extend(self, pages: Iterable[Page]) -> None:
        """Add every page of ``pages`` in order."""
        for page in pages:
            self.append(page)

    def pickled(self, index: int) -> bytes:
        """The pickle of page ``index`` (what a worker process unpickles)."""
        return self._records.get(index)

    @overload
    def __getitem__(self, index: int) -> Page: ...

    @overload
    def __getitem__(self, index: slice) -> list[Page]: ...

    def __getitem__(self, index: int | slice) -> Page | list[Page]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return pickle.loads(self.pickled(index))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Page]:
        for i in range(len(self)):
            yield self[i]

    def view(self, start: int, stop: int | None = None) -> PageView:
        """The pages ``start:stop`` as a read-back ``Sequence[Page]`` (nothing is copied)."""
        start, stop, _ = slice(start, stop).indices(len(self))
        return PageView(self, start, stop)

    # --- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Remove the temporary file (idempotent)."""
        self._records.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._records.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PageStore({len(self)} pages{', closed' if self.closed else ''})"


class PageView(Sequence[Page]):
    """The pages ``start:stop`` of a :class:`PageStore` (:meth:`PageStore.view`), read back on use."""

    def __init__(self, store: PageStore, start: int, stop: int):
        self.store, self.start, self.stop = store, start, max(start, stop)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int | slice) -> Page | list[Page]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"page index {index} out of range for a view of {len(self)} pages")
        return self.store[self.start + index]

    def __iter__(self) -> Iterator[Page]:
        for i in range(self.start, self.stop):
            yield self.store[i]


def as_store(pages: Sequence[Page] | Iterable[Page]) -> PageStore:
    """``pages`` as a :class:`PageStore` (itself when it already is one)."""
    return pages if isinstance(pages, PageStore) else PageStore(pages)


__all__ = ["PageStore", "PageView", "SpillFile", "as_store"]
