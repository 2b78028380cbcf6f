"""Build orchestration: pages -> task samples -> splits -> Parquet + dataset card (+ contact sheet, hub).

Only the CLI (:mod:`ai4va_fg_dataset.cli`) imports this package; evaluation and training read the
built Parquet through ``datasets`` and never import the builder. Modules: ``pipeline`` (the
:func:`build` entry point), ``splits``, ``export`` (Parquet + manifest), ``dataset_card``,
``contact_sheet`` and ``hub`` (push to the Hub).
"""

from .pipeline import DEFAULT_MAX_PAGE_PIXELS, SourceSpec, build

__all__ = ["DEFAULT_MAX_PAGE_PIXELS", "SourceSpec", "build"]
