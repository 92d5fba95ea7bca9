"""Device set-up for a training job: GPU claim and pinning, threads, determinism.

Call :func:`configure` before TensorFlow runs any op.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["DeviceSetup", "claim_gpu", "configure", "configure_job", "count_gpus"]


@dataclass
class DeviceSetup:
    """What :func:`configure` decided."""

    device: str  # "cpu" or "gpu:<index>"
    mixed_precision: bool
    threads: int
    lock: IO[str] | None = None  # held for the job's lifetime when a GPU was claimed

    def describe(self) -> str:
        mp = ", mixed precision" if self.mixed_precision else ""
        return f"{self.device} ({self.threads} CPU threads{mp})"


def count_gpus() -> int:
    """NVIDIA GPUs visible to ``nvidia-smi`` (0 when there is none or no driver)."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def claim_gpu(lock_dir: str | Path, n_gpus: int) -> tuple[int, IO[str]]:
    """Claim a free GPU with an exclusive file lock; blocks until one is free.

    Several jobs on one machine each get their own GPU: job k holds
    ``lock_dir/gpu<k>.lock`` until it exits.
    """
    import time

    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for index in range(n_gpus):
            handle = open(lock_dir / f"gpu{index}.lock", "w")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            return index, handle
        time.sleep(2)


def configure(
    *,
    seed: int,
    use_gpu: bool = False,
    mixed_precision: bool = False,
    threads: int = 0,
    lock_dir: str | Path = "results/.gpu-locks",
) -> DeviceSetup:
    """Pin the job to one GPU or to the CPU, seed everything, make ops deterministic.

    Parameters
    ----------
    seed : int
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
    use_gpu : bool
        The rule was given a GPU: claim one (``CUDA_VISIBLE_DEVICES``) if any exists,
        else fall back to the CPU. Without it, GPUs are hidden.
    mixed_precision : bool
        ``mixed_float16`` on a GPU (ignored on the CPU, where it only slows down).
    threads : int
        Intra-op CPU threads (0: all cores).
    """
    lock = None
    device = "cpu"
    n_gpus = count_gpus() if use_gpu else 0
    if n_gpus:
        preset = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        if preset and "," not in preset:  # an executor (SLURM, k8s) already pinned us
            device = f"gpu:{preset}"
        else:
            index, lock = claim_gpu(lock_dir, n_gpus)
            os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
            device = f"gpu:{index}"
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    threads = threads or os.cpu_count() or 1
    with contextlib.suppress(RuntimeError):  # already initialised in this process
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    use_mp = bool(mixed_precision and device != "cpu")
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")
    return DeviceSetup(device=device, mixed_precision=use_mp, threads=threads, lock=lock)


def configure_job(job: Mapping[str, Any], threads: int = 0) -> DeviceSetup:
    """:func:`configure` for a training job: its ``seed``, ``use_gpu``,
    ``mixed_precision`` and ``results`` keys (GPU locks under ``results/.gpu-locks``)."""
    return configure(
        seed=int(job["seed"]),
        use_gpu=bool(job["use_gpu"]),
        mixed_precision=bool(job["mixed_precision"]),
        threads=int(threads),
        lock_dir=Path(job["results"]) / ".gpu-locks",
    )
