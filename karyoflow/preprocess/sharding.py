"""Split a manifest into shards for parallel preprocessing.

Rows are grouped by source image so each metaphase is decoded by exactly one job, and
sources are dealt to shards by their rank, so shards are balanced and deterministic.
The merged result does not depend on the number of shards (rows carry their position
in the manifest, ``row``, and the merge sorts by it).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["PREPROCESS_KINDS", "eligible_rows", "select_shard"]

#: Manifest kinds that become single-chromosome training images.
PREPROCESS_KINDS: tuple[str, ...] = ("metaphase", "crop", "centromere")


def eligible_rows(df: pd.DataFrame, kinds: Iterable[str] = PREPROCESS_KINDS) -> pd.DataFrame:
    """Rows to preprocess (single chromosomes), with their manifest position in ``row``.

    Examples
    --------
    >>> df = pd.DataFrame({"kind": ["metaphase", "pair", "crop"], "source": ["a", "b", "c"]})
    >>> eligible_rows(df)["row"].tolist()
    [0, 2]
    """
    out = df.reset_index(drop=True)
    out.insert(0, "row", np.arange(len(out), dtype=np.int64))
    return out[out["kind"].isin(list(kinds))].reset_index(drop=True)


def select_shard(df: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """Rows of shard ``shard`` (0-based) out of ``n_shards``, sorted by source then row.

    Sources are sorted, ranked and dealt round-robin, so every source lands in exactly
    one shard and shard sizes differ by at most one source.

    Examples
    --------
    >>> df = eligible_rows(pd.DataFrame({"kind": ["crop"] * 5, "source": list("abcde")}))
    >>> [select_shard(df, k, 2)["source"].tolist() for k in (0, 1)]
    [['a', 'c', 'e'], ['b', 'd']]
    """
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    sources = np.sort(df["source"].unique())
    mine = set(sources[shard::n_shards].tolist())
    part = df[df["source"].isin(mine)]
    return part.sort_values(["source", "row"], kind="stable").reset_index(drop=True)
