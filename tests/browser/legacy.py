"""Environments of the browser tests for other front ends and for saved notebooks.

* ``.venv-ipyw7/``: ipywidgets 7.8 + classic Notebook 6.5 (what Colab ships). torch (5.5 GB) is
  not installed again: a ``.pth`` file appends the main venv's site-packages *after* this venv's
  own, so ipywidgets 7 wins and torch, torchvision, numpy, matplotlib come from the main venv.
  The package goes in with a constraints file pinning ``ipywidgets<8``: a requirement of
  ipywidgets 8 makes that install fail (it must not upgrade to 8 and hide the problem).
* ``.cache/widget-cdn/``: the three files that a notebook exported by nbconvert's
  ``HTMLExporter`` asks CDNs for (require.js, the html-manager's ``embed-amd.js``, anywidget's
  AMD ``dist/index.js``), from npm, served to Chromium with ``page.route``.

Both folders ignore themselves for git (a ``.gitignore`` of ``*`` inside). The Makefile prepares
them (``python tests/browser/legacy.py venv`` and ``... cdn``, run by the main venv's python);
the test fixtures call the same functions, which return at once when a folder is up to date.

The helpers for the pages (pixels of a grid canvas, a tile's centre) are here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[2]
VENV7 = ROOT / ".venv-ipyw7"
CDN = ROOT / ".cache" / "widget-cdn"
CONSTRAINTS = Path(__file__).with_name("ipywidgets7-constraints.txt")

IPYW7_PACKAGES = [
    "ipywidgets>=7.8,<8",
    "notebook>=6.5,<7",
    "widgetsnbextension<4",
    "anywidget",
    "ipykernel",
]
HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"  # the ipywidgets 8.1 series
REQUIREJS = "requirejs@2.1.10"  # the version nbconvert's template asks cdnjs for


# --------------------------------------------------------------------------------------------
# small utilities


def _self_ignoring(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("# made by tests/browser/legacy.py\n*\n")


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def venv_python(venv: Path = VENV7) -> Path:
    return venv / "bin" / "python"


def main_site_packages() -> str:
    """The site-packages of the interpreter running this (the main venv's)."""
    return sysconfig.get_paths()["purelib"]


# --------------------------------------------------------------------------------------------
# the ipywidgets 7 venv


def ensure_ipyw7_venv(venv: Path = VENV7, log=print) -> Path:
    """Create (once) the ipywidgets 7 venv whose .pth borrows the main venv's packages."""
    stamp = venv / ".base"
    want = _digest(json.dumps(IPYW7_PACKAGES), main_site_packages(), sys.version)
    if stamp.exists() and stamp.read_text().strip() == want and venv_python(venv).exists():
        return venv
    log(f"creating {venv} (ipywidgets 7.8, Notebook 6.5; torch from {main_site_packages()})")
    if venv.exists():
        shutil.rmtree(venv)
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    _self_ignoring(venv)
    py = str(venv_python(venv))
    out = _run([py, "-m", "pip", "install", "-q", *IPYW7_PACKAGES])
    if out.returncode:
        raise RuntimeError(f"pip install {IPYW7_PACKAGES} failed:\n{out.stdout}\n{out.stderr}")
    purelib = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   check=True).stdout.strip()
    # After the venv's own site-packages: its ipywidgets 7, jupyter_client 7 ... come first.
    Path(purelib, "zz_cnnviz_main_venv.pth").write_text(main_site_packages() + "\n")
    version = ipywidgets_version(venv)
    if not version.startswith("7.8."):
        raise RuntimeError(f"{venv} has ipywidgets {version}, not 7.8.x")
    stamp.write_text(want + "\n")
    return venv


def ipywidgets_version(venv: Path = VENV7) -> str:
    out = _run([str(venv_python(venv)), "-c",
                "import ipywidgets; print(ipywidgets.__version__)"], check=True)
    return out.stdout.strip()


class PackageInstallError(RuntimeError):
    """pip refused to install the package next to ipywidgets 7 (or the build failed)."""


def install_package_ipyw7(venv: Path = VENV7, log=print) -> None:
    """``pip install -e .`` into the ipywidgets 7 venv, constrained to ``ipywidgets<8``.

    Re-run when pyproject.toml or the constraints change. Raises PackageInstallError with pip's
    own explanation when the package's requirements do not allow ipywidgets 7.
    """
    stamp = venv / ".package"
    want = _digest((ROOT / "pyproject.toml").read_bytes(), CONSTRAINTS.read_bytes(), str(ROOT))
    if stamp.exists() and stamp.read_text().strip() == want:
        return
    log(f"installing the package into {venv} with {CONSTRAINTS.name} (ipywidgets<8)")
    stamp.unlink(missing_ok=True)
    out = _run([str(venv_python(venv)), "-m", "pip", "install", "--no-input",
                "-e", str(ROOT), "-c", str(CONSTRAINTS)], cwd=ROOT)
    if out.returncode:
        noise = ("is ignored: it is neither a file nor a directory", "Looking in ",
                 "Requirement already satisfied", "  Installing ", "  Checking ", "  Getting ",
                 "  Preparing ", "Obtaining ")
        lines = [ln for ln in (out.stdout + out.stderr).splitlines()
                 if ln.strip() and not any(n in ln for n in noise)]
        raise PackageInstallError(
            "pip install -e . -c ipywidgets7-constraints.txt (ipywidgets<8) failed:\n"
            + "\n".join(lines[-40:]))
    version = ipywidgets_version(venv)
    if not version.startswith("7."):
        raise PackageInstallError(f"installing the package left ipywidgets {version}")
    stamp.write_text(want + "\n")


# --------------------------------------------------------------------------------------------
# the CDN files of an exported notebook page


def anywidget_version() -> str:
    from importlib.metadata import version

    return version("anywidget")


def ensure_widget_cdn(folder: Path = CDN, log=print) -> Path:
    """npm install (once) the html-manager, require.js and anywidget (the Python version)."""
    specs = [HTML_MANAGER, REQUIREJS, f"anywidget@{anywidget_version()}"]
    stamp = folder / ".installed"
    want = " ".join(specs)
    if stamp.exists() and stamp.read_text().strip() == want and all(
            p.exists() for p in cdn_files(folder).values()):
        return folder
    log(f"npm install {want} into {folder}")
    if folder.exists():
        shutil.rmtree(folder)
    _self_ignoring(folder)
    (folder / "package.json").write_text(json.dumps(
        {"name": "cnnviz-widget-cdn", "private": True, "version": "0.0.0"}))
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    out = _run([npm, "install", "--no-save", "--no-package-lock", "--ignore-scripts",
                "--no-audit", "--no-fund", *specs], cwd=folder)
    if out.returncode:
        raise RuntimeError(f"npm install {want} failed:\n{out.stdout}\n{out.stderr}")
    missing = [str(p) for p in cdn_files(folder).values() if not p.exists()]
    if missing:
        raise RuntimeError(f"npm install {want} did not bring {missing}")
    stamp.write_text(want + "\n")
    return folder


def cdn_files(folder: Path = CDN) -> dict[str, Path]:
    nm = folder / "node_modules"
    return {
        # requirejs 2.1.10 on npm has require.js only; the minified file is the same code
        "require": nm / "requirejs" / "require.js",
        "html-manager": nm / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js",
        "anywidget": nm / "anywidget" / "dist" / "index.js",
    }


class OfflineRouter:
    """``page.route("**/*", router)``: the CDN files from the local npm install, every other
    request to the network aborted (and logged); local files pass."""

    PATTERNS: ClassVar[dict[str, re.Pattern]] = {
        "require": re.compile(r"/require\.js/2\.1\.10/require(\.min)?\.js$"),
        "html-manager": re.compile(r"/@jupyter-widgets/html-manager@[^/]*/dist/embed-amd\.js$"),
        "anywidget": re.compile(r"/anywidget@([^/]*)/dist/index\.js$"),
    }

    def __init__(self, folder: Path = CDN):
        self.files = cdn_files(folder)
        self.served: dict[str, str] = {}
        self.aborted: list[str] = []

    def __call__(self, route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
            return
        for name, pattern in self.PATTERNS.items():
            if pattern.search(url):
                self.served[name] = url
                route.fulfill(path=str(self.files[name]), content_type="application/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
                return
        self.aborted.append(url)
        route.abort()


# --------------------------------------------------------------------------------------------
# classic Notebook 6.5 server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClassicServer:
    def __init__(self, root: Path, port: int, token: str, log: Path):
        self.root, self.port, self.token, self.log = root, port, token, log

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"


@contextlib.contextmanager
def classic_notebook_server(venv: Path, workdir: Path, timeout: float = 120) -> Iterator[
        ClassicServer]:
    """``jupyter notebook`` (6.5) of ``venv`` on a free loopback port, with its own config,
    data and runtime folders under ``workdir`` (nothing of the user's Jupyter set-up is read)."""
    root = workdir / "notebooks"
    for sub in ("notebooks", "config", "data", "runtime"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update({
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "OMP_NUM_THREADS": "1",
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
    })
    log_path = workdir / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(venv / "bin" / "jupyter"), "notebook", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--port-retries=0", f"--NotebookApp.token={token}", "--allow-root",
         f"--NotebookApp.notebook_dir={root}", "--NotebookApp.disable_check_xsrf=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    try:
        end = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter notebook exited with {proc.returncode}:\n"
                                   + log_path.read_text()[-3000:])
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.time() > end:
                raise TimeoutError(f"jupyter notebook did not open port {port} in {timeout} s")
            time.sleep(0.2)
        yield ClassicServer(root, port, token, log_path)
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


# --------------------------------------------------------------------------------------------
# what a person sees on a grid canvas

# Number of tiles the canvas says it shows, how many of them are drawn (opaque at 25 sample
# points), how many pixels are not the background (transparent or the first pixel's colour, a
# gap between tiles), distinct colours and a checksum.
GRID_STATS = """(canvas) => {
  const n = Number(canvas.dataset.tiles || 0);
  const L = JSON.parse(canvas.dataset.layout || "null");
  if (!canvas.width || !canvas.height) return { tiles: n, drawn: 0, ink: 0, distinct: 0, hash: 0 };
  const ctx = canvas.getContext("2d");
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0, hash = 0;
  const colours = new Set();
  const bg = [img[0], img[1], img[2], img[3]];
  for (let k = 0; k < img.length; k += 4) {
    const a = img[k + 3];
    if (a === 0) continue;
    if (img[k] === bg[0] && img[k + 1] === bg[1] && img[k + 2] === bg[2] && a === bg[3]) continue;
    ink++;
    if (colours.size < 5000) colours.add(img[k] * 65536 + img[k + 1] * 256 + img[k + 2]);
  }
  for (let k = 0; k < img.length; k += 97) hash = (hash * 31 + img[k]) % 1000000007;
  let drawn = 0;
  if (L) {
    const dpr = canvas.width / parseFloat(canvas.style.width || canvas.width);
    for (let i = 0; i < n; i++) {
      const col = i % L.columns, row = Math.floor(i / L.columns);
      const x0 = col * (L.tileWidth + L.gap), y0 = row * (L.tileHeight + L.gap);
      let opaque = true;
      for (let fy = 0.1; fy < 1; fy += 0.2) for (let fx = 0.1; fx < 1; fx += 0.2) {
        const x = Math.floor((x0 + fx * L.tileWidth) * dpr);
        const y = Math.floor((y0 + fy * L.tileHeight) * dpr);
        if (img[4 * (y * canvas.width + x) + 3] !== 255) opaque = false;
      }
      if (opaque) drawn++;
    }
  }
  return { tiles: n, drawn, ink, inkFraction: ink / (img.length / 4), distinct: colours.size,
           hash, layout: L };
}"""


def wait_grid(page, canvas, tiles: int, timeout: float = 120) -> dict:
    """Wait until ``canvas`` says it shows ``tiles`` tiles and every one of them is drawn with
    real content (many colours), not a placeholder; return its statistics."""
    end = time.time() + timeout
    stats: dict = {"canvas": "absent"}
    while time.time() < end:
        with contextlib.suppress(Exception):
            if canvas.count() and not canvas.is_visible():
                stats = {"canvas": "hidden"}
            elif canvas.count():
                stats = canvas.evaluate(GRID_STATS)
                if (stats["tiles"] == tiles and stats["drawn"] == tiles
                        and stats["distinct"] > 10 and stats["inkFraction"] > 0.3):
                    return stats
        page.wait_for_timeout(200)
    raise AssertionError(f"expected a grid of {tiles} drawn tiles, the canvas shows {stats}")


def tile_centre(canvas, index: int) -> tuple[float, float]:
    layout = json.loads(canvas.get_attribute("data-layout"))
    box = canvas.bounding_box()
    col, row = index % layout["columns"], index // layout["columns"]
    x = box["x"] + col * (layout["tileWidth"] + layout["gap"]) + layout["tileWidth"] * 0.5
    y = box["y"] + row * (layout["tileHeight"] + layout["gap"]) + layout["tileHeight"] * 0.5
    return x, y


def hover_value(page, root, canvas, index: int, timeout: float = 30) -> tuple[str, float]:
    """Move the mouse over tile ``index``: the zoom box appears; return its text and value."""
    x, y = tile_centre(canvas, index)
    page.mouse.move(x, y)
    zoom = root.locator(".cnnviz-zoom")
    zoom.wait_for(state="visible", timeout=timeout * 1000)
    value = root.locator(".cnnviz-zoom-value")
    page.wait_for_function(
        "(el) => /-?\\d/.test(el.textContent)", arg=value.element_handle(),
        timeout=timeout * 1000)
    text = value.text_content().strip()
    try:
        number = float(text.split()[0])
    except ValueError:
        raise AssertionError(f"the zoom box's value is not a number: {text!r}") from None
    assert math.isfinite(number), f"the zoom box's value is {text!r}"
    return zoom.text_content(), number


# --------------------------------------------------------------------------------------------

if __name__ == "__main__":
    what = sys.argv[1:] or ["venv", "cdn"]
    for step in what:
        if step == "venv":
            ensure_ipyw7_venv()
            print(f"{VENV7}: ipywidgets {ipywidgets_version()}")
        elif step == "package":
            install_package_ipyw7()
        elif step == "cdn":
            ensure_widget_cdn()
            print(f"{CDN}: {' '.join(str(p) for p in cdn_files().values())}")
        else:
            sys.exit(f"usage: {sys.argv[0]} [venv] [package] [cdn]")
