"""Glue for ``workflow/scripts``: logging to the rule's log file and one-line errors.

Expected failures (bad input in strict mode, a missing dataset, a bad config) end the
job with ``karyoflow: <file>: <reason>`` instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = ["USER_ERRORS", "fail", "run_logged"]

Log = Callable[[str], None]


def _user_errors() -> tuple[type[BaseException], ...]:
    from karyoflow.config import ConfigError
    from karyoflow.records import IngestError

    return (IngestError, ConfigError, FileNotFoundError, ValueError, KeyError, OSError)


USER_ERRORS = _user_errors()


def fail(message: str) -> NoReturn:
    """Exit with status 1 and ``karyoflow: <message>`` on stderr."""
    raise SystemExit(f"karyoflow: {message}")


def run_logged(log_path: str | Path | None, body: Callable[[Log], None]) -> None:
    """Run ``body(log)``; ``log`` writes to stderr and to ``log_path``.

    A user error (see :data:`USER_ERRORS`) is logged and turned into a one-line exit.
    """
    handle = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "w", encoding="utf-8")  # noqa: SIM115

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if handle:
            handle.write(message + "\n")
            handle.flush()

    try:
        body(log)
    except USER_ERRORS as exc:
        text = str(exc).strip("'\"") if isinstance(exc, KeyError) else str(exc)
        if handle:  # stderr gets the one line from fail()
            handle.write(f"error: {text}\n")
        fail(text)
    finally:
        if handle:
            handle.close()
