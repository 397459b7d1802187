"""Launching a job under torchrun for the distributed tests: 2 CPU processes, one thread each."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "torchrun"


def torchrun() -> str | None:
    """The torchrun of this environment (or on the PATH), or ``None``."""
    if TORCHRUN.exists():
        return str(TORCHRUN)
    return shutil.which("torchrun")


needs_torchrun = pytest.mark.skipif(torchrun() is None, reason="torchrun is not installed")


def launch(*args: str, processes: int = 2) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node=<processes> <args>`` from the repository root,
    ``OMP_NUM_THREADS=1``, its output captured as text."""
    return subprocess.Popen(
        [str(torchrun()), "--standalone", f"--nproc_per_node={processes}", *args],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def finish(jobs: list[subprocess.Popen], timeout: float) -> list[tuple[str, str]]:
    """Wait for ``jobs`` (killing what is left after ``timeout`` seconds each) and check that
    every one exited 0; returns each job's ``(stdout, stderr)``."""
    outputs = []
    try:
        for job in jobs:
            outputs.append(job.communicate(timeout=timeout))
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
    for job, (out, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, f"{job.args} exited {job.returncode}:\n{out}\n{err}"
    return outputs
