"""Dataset examples under torchrun: 2 CPU processes (gloo) give the single-process result, bit
for bit, each process reading its own shard once, through the command line and through the API.

Two torchrun launches run at the same time (each starts one process group; a group started
again after ``destroy_process_group`` in the same processes proved unreliable with gloo):
``python -m cnnviz_widgets top-examples`` (it starts and ends its own group, writes from rank 0
only, and keeps a checkpoint per process), and ``tests/helpers/top_examples_job.py dist``: the API
over a dataset that records which items each process read, called twice with one checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cnnviz_widgets import TopExamples
from cnnviz_widgets.demo import demo_model
from tests.helpers.top_examples_job import FOLDER_BATCH, FOLDER_K, folder_run, write_shapes_folder
from tests.helpers.torchrun import finish, launch, needs_torchrun

HELPERS = Path(__file__).resolve().parent / "helpers"


@needs_torchrun
def test_two_processes_equal_one(tmp_path: Path) -> None:
    folder = write_shapes_folder(tmp_path / "shapes")
    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir()
    api.mkdir()
    jobs = [
        launch(
            "-m", "cnnviz_widgets", "top-examples", "--model", "cnnviz_widgets.demo:demo_model",
            "--data", str(folder), "--k", str(FOLDER_K), "--batch-size", str(FOLDER_BATCH),
            "--out", str(cli / "cli.npz"), "--checkpoint", str(cli / "checkpoint.npz"), "--quiet",
        ),
        launch(str(HELPERS / "top_examples_job.py"), "dist", "--data", str(folder), "--work",
               str(api)),
    ]
    outputs = finish(jobs, timeout=240)
    # only rank 0 wrote the results; each process kept its own checkpoint
    assert sorted(p.name for p in cli.iterdir()) == [
        "checkpoint.rank0-of-2.npz", "checkpoint.rank1-of-2.npz", "cli.npz"
    ]
    assert sorted(p.name for p in api.iterdir()) == [
        "api-checkpoint.rank0-of-2.npz", "api-checkpoint.rank1-of-2.npz", "api.npz", "reads.json"
    ]
    assert outputs[0][0].count("Wrote the top") == 1

    single = folder_run(str(folder))  # one process, one thread, the same batch size
    model = demo_model().model
    for path in (cli / "cli.npz", api / "api.npz"):
        two = TopExamples.load(path, model=model)
        assert two.meta["processes"] == 2 and two.meta["batch_size"] == FOLDER_BATCH
        assert two.layers == single.layers
        for layer in single.layers:
            assert torch.equal(two.indices(layer), single.indices(layer)), (path, layer)
            assert torch.equal(two.scores(layer), single.scores(layer)), (path, layer)
            assert torch.equal(two.positions(layer), single.positions(layer)), (path, layer)
            assert torch.equal(two.labels(layer), single.labels(layer)), (path, layer)

    log = json.loads((api / "reads.json").read_text())
    rank0, rank1 = log["reads"]
    assert rank0 == list(range(0, 64, 2)) and rank1 == list(range(1, 64, 2))  # own shard, once
    assert log["same_after_resume"] and log["read_again"] == []
