"""Jobs that start at the same moment on a fresh MLflow sqlite store: the store is
created once, under a file lock, and stays usable (20 trials, parallel processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRIALS = 20
WORKERS = 3

#: One worker process: for each trial, wait at a file barrier with the others, then
#: open a child run on that trial's fresh store (as a training job does) and log to it.
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlflow
    from karyoflow.engine.tracking import child_run

    root, (k, workers, trials) = Path(sys.argv[1]), map(int, sys.argv[2:5])
    failures = 0
    for t in range(trials):
        trial = root / f"t{t}"
        trial.mkdir(exist_ok=True)
        (trial / f"ready.{k}").touch()
        while len(list(trial.glob("ready.*"))) < workers:
            time.sleep(0.005)
        uri = f"sqlite:///{trial / 'mlflow' / 'mlflow.db'}"
        try:
            with child_run(uri, "race", name=f"job{k}", parent=None, results=trial):
                mlflow.log_metric("x", float(k))
        except Exception as exc:
            failures += 1
            print(f"trial {t} worker {k}: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
    sys.exit(1 if failures else 0)
    """
)


def test_parallel_jobs_on_a_fresh_store(tmp_path: Path, repo: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), str(k), str(WORKERS), str(TRIALS)],
            cwd=repo,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(WORKERS)
    ]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    failed = [
        e.strip().splitlines()[-1] for p, e in zip(procs, errors, strict=True) if p.returncode
    ]
    assert not failed, failed
    from mlflow.tracking import MlflowClient

    for t in range(TRIALS):  # every store usable: one experiment, every job's run
        client = MlflowClient(
            tracking_uri=f"sqlite:///{tmp_path / f't{t}' / 'mlflow' / 'mlflow.db'}"
        )
        exp = client.get_experiment_by_name("race")
        runs = client.search_runs([exp.experiment_id])
        assert sorted(r.data.metrics["x"] for r in runs) == [float(k) for k in range(WORKERS)]


def test_two_workflows_share_one_fresh_store(tmp_path: Path, repo: Path) -> None:
    """Two checkouts' workflows started together on one fresh MLFLOW_TRACKING_URI: both
    initialise it in `onstart` without an error and both parent runs are in it."""
    import os

    import yaml

    sys.path.insert(0, str(repo / "tests" / "e2e"))
    from test_workflow import SNAKEMAKE, TINY_TRAIN, tiny_config

    from karyoflow.engine.tracking import TRACKING_ENV

    for trial in range(3):
        uri = f"sqlite:///{tmp_path / f'shared{trial}' / 'mlflow.db'}"
        env = {k: v for k, v in os.environ.items() if k not in TRACKING_ENV}
        env["MLFLOW_TRACKING_URI"] = uri
        procs = []
        for side in ("a", "b"):
            work = tmp_path / f"{side}{trial}"
            work.mkdir()
            (work / "config.yaml").write_text(yaml.safe_dump(tiny_config(train=TINY_TRAIN)))
            cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--directory", str(work),
                   "--cores", "1", "--configfile", str(work / "config.yaml"),
                   "--until", "synthesize"]  # fmt: skip
            procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
        for proc in procs:
            err = proc.communicate(timeout=600)[1]
            assert proc.returncode == 0, err[-2000:]
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        exps = [e for e in client.search_experiments() if e.name != "Default"]
        assert len(exps) == 1
        parents = client.search_runs([exps[0].experiment_id])
        assert len(parents) == 2 and {r.data.tags["karyoflow.kind"] for r in parents} == {
            "workflow"
        }
