"""Fixtures for tests on the real datasets in ``../shared/data`` beside the repository.

The folder is not part of the repository. Tests marked ``realdata`` are skipped when
it is absent, except under ``CI=true`` where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``<repo>/../shared/data``
REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder; skip (or fail under ``CI=true``) when it is missing."""
    if not REAL_DATA.is_dir():
        message = f"real data folder not found: {REAL_DATA}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REAL_DATA
