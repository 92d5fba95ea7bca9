"""karyoflow: reproducible chromosome image analysis.

All logic of the Snakemake workflow lives in this package as small, typed functions;
``workflow/scripts`` only adapts them to the ``snakemake`` object.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
