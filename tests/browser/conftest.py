"""A real JupyterLab 4 server and a headless Debian Chromium, one of each per test session.

The server runs from this venv on a free loopback port with a random token, serving a
temporary folder; the browser is Debian's ``chromium`` driven by Python's playwright (its own
browser download does not work offline). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"jupyter did not open port {port} in {timeout} s")


class JupyterServer:
    def __init__(self, root: Path, port: int, token: str):
        self.root, self.port, self.token = root, port, token

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells with a python3 kernelspec (no "Select Kernel" dialog)."""
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def execute_cell(page, index: int, attempts: int = 4) -> None:
    """Run cell ``index`` as a person does (click into it, Shift+Enter) and check that it was
    queued (its prompt leaves ``[ ]``); retried, since right after the page loads a key press
    can be lost while the kernel connection settles."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt").first
    for _ in range(attempts):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "(p) => !/\\[\\s*\\]/.test(p.textContent)", arg=prompt.element_handle(),
                timeout=10_000)
            return
        except Exception:
            page.wait_for_timeout(1000)
    raise AssertionError(f"cell {index} did not start: prompt {prompt.text_content()!r}")


def open_notebook(jupyter_server, browser, name: str, cells: list[str],
                  viewport: dict[str, int] | None = None, before=None, **context_options):
    """Write notebook ``name`` and open it in a JupyterLab workspace of its own (so that what
    other tests left open in the default workspace is not restored in front of it), with a
    started kernel, the left area closed and the news toast gone; ``before(page)`` runs before
    the page loads (e.g. to record websocket frames). Returns (context, page)."""
    from .test_quick_tour import KERNEL_READY, accept_kernel_dialog, dismiss_news_toast

    write_notebook(jupyter_server.root / f"{name}.ipynb", cells)
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 1400},
                                  **context_options)
    page = context.new_page()
    if before is not None:
        before(page)
    page.goto(jupyter_server.url(f"lab/workspaces/{name}/tree/{name}.ipynb"))
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=120_000)
    end = time.time() + 120
    while not page.evaluate(KERNEL_READY):
        accept_kernel_dialog(page)
        assert time.time() < end, "the kernel did not start"
        page.wait_for_timeout(500)
    if page.locator("#jp-left-stack").is_visible():
        page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
    dismiss_news_toast(page)
    page.add_style_tag(content=".Toastify { display: none !important; }")  # over the widget
    return context, page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory) -> Iterator[JupyterServer]:
    if shutil.which("jupyter", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("jupyter is not installed in this environment")
    root = tmp_path_factory.mktemp("notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser",
            "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}", "--allow-root",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            "--ServerApp.disable_check_xsrf=True",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    try:
        _wait_for_port(port, proc)
        yield JupyterServer(root, port, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()
