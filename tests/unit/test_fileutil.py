"""Atomic writes: debris of killed writers is removed, the umask is read without
being changed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from karyoflow.fileutil import atomic_path, umask


def test_parts_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.h5"
    host = socket.gethostname().replace(".", "_") or "host"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".out.h5.{host}.{int(dead.stdout)}.abc123.part"
    alive = tmp_path / f".out.h5.{host}.{os.getppid()}.def456.part"  # our parent: running
    other = tmp_path / f".out.h5.elsewhere.{int(dead.stdout)}.ghi789.part"  # another host
    for p in (stale, alive, other):
        p.write_text("half written")
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert not stale.exists() and alive.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "out.h5"])


def test_umask_is_read_not_changed() -> None:
    before = os.umask(0o027)
    try:
        assert umask() == 0o027
        assert os.umask(0o027) == 0o027  # unchanged by the read
    finally:
        os.umask(before)
