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
from pathlib import Path

from tests.helpers.evaluate_job import BATCH, IMAGES, METHODS, METRICS, Shapes, as_record, run
from tests.helpers.torchrun import finish, launch, needs_torchrun

HELPERS = Path(__file__).resolve().parent / "helpers"


@needs_torchrun
def test_two_processes_equal_one(tmp_path: Path) -> None:
    out = tmp_path / "two.json"
    job = launch(str(HELPERS / "evaluate_job.py"), "--out", str(out))
    single = as_record(run(Shapes()))  # meanwhile, one process (one thread: conftest)
    finish([job], timeout=300)
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
