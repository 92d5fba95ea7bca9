"""Progress text for long work: how far, and about how long is left."""

from __future__ import annotations

__all__ = ["eta"]


def eta(done: int, total: int | None, seconds: float) -> str:
    """``"about N s to go"`` (or minutes) from the share done in ``seconds``; ``""``
    when the total is unknown or nothing is done yet.

    Examples
    --------
    >>> eta(100, 400, 50.0)
    'about 150 s to go'
    >>> eta(1, 10, 120.0)
    'about 18 min to go'
    >>> eta(0, 10, 5.0), eta(3, None, 5.0)
    ('', '')
    """
    if not total or done <= 0:
        return ""
    left = seconds * (total - done) / done
    return f"about {left / 60:.0f} min to go" if left >= 600 else f"about {left:.0f} s to go"
