"""``evaluate`` under torchrun: 2 CPU processes (gloo) give the single-process evaluation, bit for
bit, each process scoring its own whole batches once.

Exact, not to a tolerance: each process scores the very batches a single process scores (the
dataset is cut into the single-process batches and process ``r`` takes batches ``r, r + 2,
...``), with the same per-batch seeds and one torch thread, so every per-image value is computed
by the same operations in the same order; the values are then ordered by dataset index and the
bootstrap runs on identical arrays with the same seed. No value is summed across processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.evaluate_job import BATCH, IMAGES, METHODS, METRICS, Shapes, as_record, run

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "torchrun"


def _torchrun() -> str | None:
    if TORCHRUN.exists():
        return str(TORCHRUN)
    return shutil.which("torchrun")


@pytest.mark.skipif(_torchrun() is None, reason="torchrun is not installed")
def test_two_processes_equal_one(tmp_path: Path) -> None:
    out = tmp_path / "two.json"
    job = subprocess.Popen(
        [str(_torchrun()), "--standalone", "--nproc_per_node=2",
         str(ROOT / "tests" / "helpers" / "evaluate_job.py"), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    single = as_record(run(Shapes()))  # meanwhile, one process (one thread: conftest)
    try:
        stdout, stderr = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stdout + stderr
    two = json.loads(out.read_text())
    assert two["world"] == 2
    # each process read its own whole batches, once: 0 and 2, 1 and 3
    batches = [list(range(i, min(i + BATCH, IMAGES))) for i in range(0, IMAGES, BATCH)]
    assert two["reads"] == [batches[0] + batches[2], batches[1] + batches[3]]
    assert two["indices"] == single["indices"] == list(range(IMAGES))
    assert two["targets"] == single["targets"] and two["labels"] == single["labels"]
    assert sorted(two["values"]) == sorted(f"{m}|{k}" for m in METHODS for k in METRICS)
    for key, values in single["values"].items():
        assert two["values"][key] == values, key  # every per-image value, bit for bit
        assert any(v is not None for v in values), key  # values (GradCAM of a random model
        # is often a constant map, whose Spearman correlation is NaN: compared as None)
    assert two["summary"] == single["summary"]  # means and bootstrap intervals
