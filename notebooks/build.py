"""Write the course notebooks from their sources in ``notebooks/src/`` (jupytext percent files).

The sources are plain Python that ruff reads; this build adds what every notebook shares and
what comes from one place:

* the "Open in Colab" badge under the title and the install cell after it, from the package
  name and repository in ``pyproject.toml`` (the one source the README and tests use too);
* solution cells (``# %% tags=["solution"]``) hidden until opened: a ``#@title`` line and
  ``cellView: form`` for Colab, ``jupyter.source_hidden`` for JupyterLab;
* an exercise's starting cell (``tags=["exercise"]``) and its check cell (``tags=["check"]``)
  keep their tag, so tests can find them;
* stable cell ids ``<NN>-<index>``, the kernelspec, no outputs;
* the Chinese notebooks (``notebooks/zh/``): the Markdown cells of ``src/zh/<name>.py`` (the
  same number, in the same order) between the English source's code cells, so the code is the
  same in both languages.

Run ``python notebooks/build.py`` after editing a source; ``--check`` exits 1 when a committed
notebook differs from what the sources give (the tests run it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
import tomllib

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
LANGUAGES = {"en": ("", ""), "zh": ("zh", "zh/")}
"""Language -> (folder of its Markdown sources under src/, folder of its notebooks)."""
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
SOLUTION_TITLE = "#@title Solution (double-click to show the code)\n"
KEPT_TAGS = ("exercise", "check")
"""Tags of code cells that the notebooks keep: an exercise's starting cell and its check."""


def project() -> dict:
    """``[project]`` of pyproject.toml: the one source of the package name and repository."""
    with open(HERE.parent / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


PROJECT = project()
PACKAGE = PROJECT["name"]
COLAB = ("https://colab.research.google.com/github/"
         + PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
         + "/blob/main/notebooks/")

INSTALL = f"""\
# Installs {PACKAGE} when it is missing (on Colab, for example); does nothing otherwise.
# It keeps the ipywidgets that is installed (Colab's 7.x included). Colab shows third-party
# widgets only with its custom widget manager, which the second part turns on there.
try:
    import cnnviz_widgets
except ImportError:
    %pip install -q {PACKAGE}
    import cnnviz_widgets
try:
    from google.colab import output

    output.enable_custom_widget_manager()
except ImportError:  # not on Colab
    pass
print("{PACKAGE}", cnnviz_widgets.__version__)"""


def translated(cells: list, markdown_source: Path) -> list:
    """``cells`` with each Markdown cell replaced, in order, by one of ``markdown_source``."""
    texts = [c.source for c in jupytext.read(markdown_source, fmt="py:percent").cells
             if c.cell_type == "markdown"]
    wanted = sum(c.cell_type == "markdown" for c in cells)
    if len(texts) != wanted:
        raise SystemExit(f"{markdown_source} has {len(texts)} Markdown cells; the English "
                         f"source has {wanted}: translate cell for cell.")
    it = iter(texts)
    return [nbformat.v4.new_markdown_cell(next(it)) if c.cell_type == "markdown" else c
            for c in cells]


def notebook(source: Path, language: str = "en") -> nbformat.NotebookNode:
    """The notebook that ``source`` gives in ``language`` (see module docstring)."""
    src = jupytext.read(source, fmt="py:percent")
    name = source.stem
    cells = list(src.cells)
    markdown_dir, folder = LANGUAGES[language]
    if markdown_dir:
        cells = translated(cells, SOURCES / markdown_dir / source.name)
    title, _, rest = cells[0].source.partition("\n\n")
    badge = f"[![Open In Colab]({BADGE_IMAGE})]({COLAB}{folder}{name}.ipynb)"
    out = [nbformat.v4.new_markdown_cell(f"{title}\n\n{badge}\n\n{rest}".rstrip("\n")),
           nbformat.v4.new_code_cell(INSTALL)]
    for cell in cells[1:]:
        if cell.cell_type == "markdown":
            out.append(nbformat.v4.new_markdown_cell(cell.source))
        elif "solution" in cell.metadata.get("tags", []):
            new = nbformat.v4.new_code_cell(SOLUTION_TITLE + cell.source)
            new["metadata"] = {"cellView": "form", "jupyter": {"source_hidden": True},
                               "tags": ["solution"]}
            out.append(new)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
            tags = [t for t in cell.metadata.get("tags", []) if t in KEPT_TAGS]
            if tags:
                new["metadata"] = {"tags": tags}
            out.append(new)
    for i, cell in enumerate(out):
        cell["id"] = f"{name[:2]}-{i:03d}"
    nb = nbformat.v4.new_notebook()
    nb["cells"] = out
    nb["metadata"] = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nbformat.validate(nb)
    return nb


def text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed notebook is not what its source gives")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        for language, (_, folder) in LANGUAGES.items():
            target = HERE / folder / f"{source.stem}.ipynb"
            wanted = text(notebook(source, language))
            if args.check:
                if not target.exists() or target.read_text(encoding="utf-8") != wanted:
                    stale.append(f"{folder}{target.name}")
            else:
                target.parent.mkdir(exist_ok=True)
                target.write_text(wanted, encoding="utf-8")
                print(f"wrote notebooks/{folder}{target.name}")
    if stale:
        print("out of date (run python notebooks/build.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
