"""The one image codec of AI4VA-FG: encode sample images for Parquet, decode them back.

Used by the builder (:mod:`ai4va_fg_dataset.build.export`), the evaluation (lmms-eval ``doc_to_visual``
and the zoom agent) and RARL training (the zoom environment), so every consumer reads a row's image
the same way. Pure PIL + the standard library.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

PNG_COMPRESS_LEVEL = 1
"""zlib level of drawn pages. On a 994x1528 scanned page (craphound page11) level 1 takes 0.12 s
for 2.19 MB, PIL's default level 6 0.31 s for 2.14 MB; PNG encoding is the hot path of the build.
(zlib's Z_RLE strategy was ~15% faster but 1.5-1.8x larger on manga screentones: not used.)"""

JPEG_QUALITY = 95
"""Quality of drawn pages whose source file is a JPEG scan (``image.info["source_format"]``):
re-encoding a JPEG scan as PNG made the pages ~5x larger and the build slower for no gain in
fidelity. ``subsampling=0`` (4:4:4) keeps the blue/orange marks' edges sharp."""


def encode_image(image: Any) -> dict[str, Any]:
    """The ``Image()`` cell of a sample image: ``{"bytes": ..., "path": None}``.

    Args:
        image: a ``PIL.Image.Image`` (a page with marks drawn, encoded here as JPEG at
            :data:`JPEG_QUALITY` when ``image.info["source_format"] == "JPEG"``, else PNG), ``bytes``
            (the original page file, kept as is), a ``str`` / ``Path`` of the original file
            (read as bytes), a finished cell dict, or a ``Future`` of any of these
            (:class:`ImageEncoder`).

    Raises:
        TypeError: any other type.
        FileNotFoundError: a path that does not exist.
    """
    from PIL import Image as PILImage

    if isinstance(image, Future):
        image = image.result()
    if isinstance(image, dict) and isinstance(image.get("bytes"), bytes):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(image), "path": None}
    if isinstance(image, (str, Path)):
        return {"bytes": Path(image).read_bytes(), "path": None}
    if isinstance(image, PILImage.Image):
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            image = image.convert("RGB")
        buf = io.BytesIO()
        if image.info.get("source_format") == "JPEG" and image.mode in ("L", "RGB"):
            image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        else:
            image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return {"bytes": buf.getvalue(), "path": None}
    raise TypeError(f"sample image of type {type(image).__name__} is not a PIL image, bytes or a path")


def decode_image(image: Any):
    """A sample image as an RGB ``PIL.Image.Image``: the inverse of :func:`encode_image`.

    Args:
        image: a ``PIL.Image.Image``, a ``datasets`` ``Image()`` cell (``{"bytes": ..., "path": ...}``),
            the raw bytes of an image file, a ``str`` / ``Path`` of one, or a ``Future`` of any of these
            (:class:`ImageEncoder`).

    Raises:
        TypeError: any other type (the message names it).
        OSError: bytes or a file PIL cannot read.
    """
    from PIL import Image as PILImage

    if isinstance(image, Future):
        image = image.result()
    if isinstance(image, Mapping):
        image = image.get("bytes") or image.get("path")
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = PILImage.open(io.BytesIO(bytes(image)))
    elif isinstance(image, (str, Path)):
        image = PILImage.open(image)
    if not isinstance(image, PILImage.Image):
        raise TypeError(f"cannot read an image from a {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


class ImageEncoder:
    """Encodes drawn page images (JPEG or PNG) in background threads while generation goes on.

    Pillow releases the GIL while it compresses, so ``workers`` threads encode in parallel
    (measured: 2 threads halve the wall time of PNG encoding on 2 cores). At most
    ``max_pending`` images wait for encoding; :meth:`submit` blocks beyond that, which bounds the
    memory held by decoded pages.

    Use as a context manager; :meth:`submit` returns a ``Future`` of the ``Image()`` cell for a PIL
    image and the value unchanged otherwise (bytes of an untouched page need no work).
    """

    def __init__(self, workers: int | None = None, max_pending: int | None = None):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.workers = workers or max(1, min(4, cores))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="png")
        self._slots = threading.BoundedSemaphore(max_pending or 2 * self.workers + 2)

    def submit(self, image: Any) -> Any:
        """Queue a PIL image for encoding (``Future`` of its cell); other values pass through."""
        from PIL import Image as PILImage

        if not isinstance(image, PILImage.Image):
            return image
        self._slots.acquire()
        future = self._pool.submit(encode_image, image)
        future.add_done_callback(lambda _f: self._slots.release())
        return future

    def close(self) -> None:
        """Wait for the queued images and stop the threads."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
