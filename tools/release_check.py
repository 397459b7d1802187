"""Release check: the package as a user installs it, outside the checkout.

1. ``python -m build``: an sdist, and a wheel built from that sdist (front end rebuilt from
   ``js/`` by hatch-jupyter-builder); ``twine check --strict`` on both.
2. A second wheel built straight from the checkout: it must hold the same files with the same
   contents as the one built from the sdist (the sdist is complete).
3. A fresh venv (``.venv-wheel/``) gets the wheel from ``dist/`` and its dependencies from the
   package registry, plus the notebook runner; notebooks 00 and 03 run in a temporary folder
   with that venv's kernel, and the package they import must be the installed one.

Run: ``.venv/bin/python tools/release_check.py`` (``make release-check``); exits non-zero on
any failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
VENV = ROOT / ".venv-wheel"
NOTEBOOKS = ("00_quick_tour", "03_class_activation_maps")
TORCH_PIN = os.environ.get("TORCH_PIN", "torch==2.14.1 torchvision==0.29.1").split()


def run(*cmd: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=True)


def contents(wheel: Path) -> dict[str, str]:
    """``{file name: sha256}`` of a wheel's files (its RECORD left out: it lists the same)."""
    with zipfile.ZipFile(wheel) as zf:
        return {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()
                if not n.endswith("RECORD")}


def build() -> Path:
    shutil.rmtree(DIST, ignore_errors=True)
    run(sys.executable, "-m", "build", "--outdir", DIST, ".")
    run(sys.executable, "-m", "twine", "check", "--strict", *sorted(DIST.iterdir()))
    (wheel,) = DIST.glob("*.whl")
    with tempfile.TemporaryDirectory() as tree:
        run(sys.executable, "-m", "build", "--wheel", "--outdir", tree, ".")
        (direct,) = Path(tree).glob("*.whl")
        from_sdist, from_tree = contents(wheel), contents(direct)
    if from_sdist != from_tree:
        only = sorted(set(from_sdist) ^ set(from_tree))
        changed = sorted(n for n in set(from_sdist) & set(from_tree)
                         if from_sdist[n] != from_tree[n])
        raise SystemExit(f"The wheel built from the sdist differs from the checkout's: files "
                         f"in one only {only}, different contents {changed}.")
    need = {"cnnviz_widgets/static/widget.js", "cnnviz_widgets/data/shapesnet.pt",
            "cnnviz_widgets/data/shapes_detector.pt", "cnnviz_widgets/data/shapes_segmenter.pt"}
    if not need <= set(from_sdist):
        raise SystemExit(f"The wheel lacks {sorted(need - set(from_sdist))}.")
    print(f"{wheel.name}: {len(from_sdist)} files, the same from the sdist and the checkout")
    return wheel


def fresh_venv(wheel: Path) -> Path:
    shutil.rmtree(VENV, ignore_errors=True)
    run(sys.executable, "-m", "venv", VENV)
    python = VENV / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    # torch at the versions this machine holds; the wheel's own range admits them
    run(python, "-m", "pip", "install", "-q", *TORCH_PIN)
    run(python, "-m", "pip", "install", "-q", wheel, "ipykernel", "nbclient", "nbformat")
    (VENV / ".gitignore").write_text("*\n")
    return python


RUNNER = textwrap.dedent('''
    import sys
    from pathlib import Path

    import nbclient
    import nbformat

    source, here = Path(sys.argv[1]), Path(sys.argv[2])
    for name in sys.argv[3:]:
        nb = nbformat.read(source / f"{name}.ipynb", as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(
            "import cnnviz_widgets, sys\\nprint('FROM', cnnviz_widgets.__file__, sys.executable)"))
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                resources={"metadata": {"path": str(here)}}).execute()
        out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        print(name, out.strip())
        assert f"{sys.prefix}/lib" in out, f"{name} did not use the installed package: {out}"
''')


def run_notebooks(python: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "run_notebooks.py"
        script.write_text(RUNNER)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH")}
        env["OMP_NUM_THREADS"] = "1"
        # a private Jupyter data folder: the kernel is this venv's own ipykernel
        env["JUPYTER_DATA_DIR"] = str(Path(work) / "jupyter")
        run(python, script, ROOT / "notebooks", work, *NOTEBOOKS, cwd=Path(work), env=env)


def main() -> None:
    wheel = build()
    python = fresh_venv(wheel)
    run_notebooks(python)
    print("release check passed")


if __name__ == "__main__":
    main()
