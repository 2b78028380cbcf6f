"""The build's per-page work on Ray Data: ``ai4va-fg build --engine ray``, past one machine.

Why Ray Data (README, "Builds that scale"): it is a streaming engine (blocks flow through the
stages with back-pressure, so a build that does not fit in one machine's memory still streams),
it schedules tasks on every node of a Ray cluster with nothing to configure beyond ``RAY_ADDRESS``,
it keeps the input order on request (``DataContext.execution_options.preserve_order``), and
Hugging Face ``datasets`` interoperates with it (``Dataset.from_generator`` / ``ray.data.from_huggingface``).
Dask or Spark would need a JVM (Spark) or a hand-written order-keeping stage (Dask bags).

What runs where:

* on the cluster, in actors (``ray.data.Dataset.map`` with a callable class, ``concurrency`` of
  them): :func:`ai4va_fg_dataset.build.parallel.process_page`, the very function of the local
  ``--num-proc`` pool (decode the page, generate its samples, draw the marks, encode the images),
  each actor building its prepared generators once;
* on the driver: the ordered result stream goes through the same
  :class:`~ai4va_fg_dataset.build.parallel.PageStream` and Parquet writer as a local build, so
  ``--engine ray`` writes the same Parquet + card layout, identical byte for byte to a local build
  with the same seed (tested in single-machine mode in ``tests/test_parallel_build.py``).

Ray does the scheduling, the back-pressure and the ordering; nothing of that is written here. The
one writer on the driver keeps the output identical to a local build and the shard names
deterministic; with images encoded on the workers, it only appends bytes to Parquet files.

Connecting: when ``ray`` is already initialised (e.g. ``ray.init("ray://head:10001")`` before
calling :func:`ai4va_fg_dataset.build.build`) that cluster is used; else ``ray.init()`` connects to
``RAY_ADDRESS`` when it is set, or starts a local single-machine Ray with ``num_proc`` CPUs, and
shuts it down when the build ends. Page images must be readable at the same path on every node
(a shared file system), as for any Ray Data job reading files.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from ..page import Page
from .parallel import PageResult, PageWork, apply_pixel_limit, default_num_proc, process_page

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'ai4va-fg[scale]'  (Ray Data)"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(f"--engine ray needs Ray Data, which is not installed ({exc}): {INSTALL_HINT}") from exc
    return ray


class _PageActor:
    """A Ray Data actor: unpickles the prepared :class:`PageWork` once, then runs
    :func:`process_page` on each row ``{"index", "page"}`` (the page pickled) and returns
    ``{"index", "result"}`` (the :class:`PageResult` pickled)."""

    def __init__(self, work: bytes):
        self.work: PageWork = pickle.loads(work)
        apply_pixel_limit(self.work)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        result = process_page(self.work, int(row["index"]), pickle.loads(row["page"]))
        return {"index": int(row["index"]), "result": pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)}


def run_pages(work: PageWork, pages: Sequence[Page], *, num_proc: int | None = None) -> Iterator[PageResult]:
    """Yield :func:`~ai4va_fg_dataset.build.parallel.process_page` of every page, in page order,
    computed by Ray Data actors.

    Args:
        work: the prepared generators and settings (pickled once, sent to each actor).
        pages: the pages.
        num_proc: actors (default: the CPUs of the Ray cluster, or of this machine for a local
            Ray); also the CPUs of a local Ray started here.

    Raises:
        ImportError: Ray Data is not installed (the message says how to install it).
        ValueError: ``num_proc`` < 1, or generators that cannot be pickled to the workers.
        Whatever :func:`process_page` raises on a worker (Ray re-raises it here).
    """
    if num_proc is not None and num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    ray = _import_ray()
    try:
        work_bytes = pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValueError(f"--engine ray: a task generator cannot be sent to Ray workers ({exc}), e.g. a Panel "
                         "Understanding VLM client holding a connection; use --engine local") from exc
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if not os.environ.get("RAY_ADDRESS"):
            options["num_cpus"] = num_proc or default_num_proc()
        ray.init(**options)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the output is written in page order
        ctx.enable_progress_bars = False  # the build has its own, counting pages
        actors = num_proc or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = max(1, min(actors, len(pages)))
        from .page_store import PageStore

        # the driver hands Ray every page's pickle (the page store's own bytes); Ray Data keeps them
        # in its object store, not in this process
        items = [{"index": i, "page": pages.pickled(i) if isinstance(pages, PageStore)
                  else pickle.dumps(pages[i], protocol=pickle.HIGHEST_PROTOCOL)} for i in range(len(pages))]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * actors)))
        ds = ds.map(_PageActor, fn_constructor_kwargs={"work": work_bytes}, concurrency=actors, num_cpus=1)
        for expected, row in enumerate(ds.iter_rows()):
            result: PageResult = pickle.loads(row["result"])
            if result.index != expected:  # preserve_order is what keeps the output identical
                raise RuntimeError(f"Ray Data returned page {result.index} where page {expected} was expected")
            yield result
    finally:
        if started:
            ray.shutdown()
