"""Where the tests find real comic data, and the one skip marker for tests that need the full sets.

The embedded demo pages (``ai4va_fg_dataset/demo_data``, 13 real pages with their licences) ship with
the package: tests use them wherever they can, so a clone without ``../shared`` still runs them.
Only tests that check facts about the complete datasets (page counts, every page of a book, the
inconsistent Mimi & Eunice strips) need ``../shared/data``; they are marked ``needs_shared_data``
and say so in their skip reason, which ``make test`` prints (``pytest -rs``).
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "ai4va_fg_dataset" / "demo_data"
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_shared_data(what: str) -> pytest.MarkDecorator:
    """Skip marker for a test that checks ``what`` on the full real datasets in ``../shared/data``."""
    return pytest.mark.skipif(
        not (SHARED_DATA / "craphound").is_dir(),
        reason=f"needs ../shared/data beside the repo ({SHARED_DATA} not found): checks {what}, "
        "which the 13 embedded demo pages do not contain",
    )
