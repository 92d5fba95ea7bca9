"""Small file helpers: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "file_sha256",
    "files_sha256",
    "finite_or_none",
    "umask",
    "write_json",
]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    Nothing half-written is ever left at ``path``: if the block raises, the temporary
    file is removed and ``path`` is untouched. The temporary name carries the host and
    process id (``.<name>.<host>.<pid>.<random>.part``), so that the next write of
    ``path`` removes what a killed process (``SIGKILL``) of this host left.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path)
    prefix = f".{path.name}.{_HOST}.{os.getpid()}."
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; use the usual mode
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_HOST = socket.gethostname().replace(".", "_") or "host"


def _remove_stale_parts(path: Path) -> None:
    """Remove temporary files of ``path`` left by dead processes of this host."""
    for part in path.parent.glob(f".{glob.escape(path.name)}.{_HOST}.*.part"):
        pid = part.name[len(path.name) + len(_HOST) + 3 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # that process is gone: its file is debris
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        except PermissionError:  # alive, someone else's
            pass


def umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, even
    for a moment, for every thread of the process)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return _UMASK_AT_IMPORT


def _umask_at_import() -> int:
    mask = os.umask(0o022)  # at import, before the package starts any thread
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_at_import()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths, length: int = 16) -> str:
    """Short combined SHA-256 of several files' bytes (order-independent): a data hash.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_text("x"); _ = (d / "b").write_text("y")
    >>> files_sha256([d / "a", d / "b"]) == files_sha256([d / "b", d / "a"])
    True
    """
    digest = hashlib.sha256()
    for path in sorted(map(str, paths)):
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:length]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively (strict JSON).

    NumPy scalars become Python numbers; tuples become lists.

    Examples
    --------
    >>> finite_or_none({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN (e.g. no validation split)
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted strict JSON, atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "m.json"
    >>> write_json(target, {"b": 1, "a": float("nan")})
    >>> print(target.read_text(), end='')
    {
      "a": null,
      "b": 1
    }
    """
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(finite_or_none(data), indent=2, sort_keys=True) + "\n")
