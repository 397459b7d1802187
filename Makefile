# cnnviz-widgets: one command to set up and run the demo, one to set up and run every test.
#   make demo   -> venv + package, then figures (and later the explorer page) of the demo model
#   make test   -> venv + package + test tools + Chromium, then ruff, mypy, pytest, JS unit tests, release check
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
OUT    ?= demo-output
# torch/torchvision releases known to install on the project's machines (see shared TESTING.md);
# the package itself asks only for torch>=2.1.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup setup-test browser demo test lint pytest jstest release-check clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	touch $@

$(VENV)/.package: $(VENV)/.torch pyproject.toml js/package.json js/package-lock.json
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.package pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.package

setup-test: $(VENV)/.test browser js/node_modules/.package-lock.json

js/node_modules/.package-lock.json: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund

# Debian's Chromium for the browser tests (Playwright's own download does not work offline).
# (and Noto CJK, so that screenshots of the Chinese interface show the characters)
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; } || { \
	  echo "Installing Debian's chromium and fonts-noto-cjk for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-noto-cjk >/dev/null; }

demo: setup
	$(PY) -m cnnviz_widgets demo --out $(OUT)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check cnnviz_widgets tests benchmarks tools notebooks
	$(VENV)/bin/mypy

pytest: setup-test
	$(PY) -m pytest

jstest: js/node_modules/.package-lock.json
	cd js && npm test && npm run typecheck

# The release as a user gets it: sdist and wheel built, twine-checked, the wheel from the sdist
# equal to the checkout's, installed into a fresh venv that runs notebooks 00 and 03.
release-check: $(VENV)/.test js/node_modules/.package-lock.json
	$(PY) tools/release_check.py

test: setup-test lint jstest pytest release-check

clean:
	rm -rf $(VENV) .venv-wheel dist build js/node_modules cnnviz_widgets/static/widget.js demo-output

# Browser tests of the classic Notebook 6.5 under ipywidgets 7.8 (what Colab ships) and of a saved
# notebook opened offline (tests/browser/legacy.py, which names these two folders; both ignore
# themselves for git): .venv-ipyw7/ borrows torch & co. from $(VENV) through a .pth file (the
# test installs the package into it itself, constrained to ipywidgets<8, so that a requirement
# of ipywidgets 8 fails that test rather than the set-up); .cache/widget-cdn/ holds the files
# an exported notebook page asks CDNs for (html-manager, require.js, anywidget), from npm.
VENV7      := .venv-ipyw7
WIDGET_CDN := .cache/widget-cdn

.PHONY: setup-legacy clean-legacy

setup-test: setup-legacy

setup-legacy: $(VENV7)/.base $(WIDGET_CDN)/.installed

$(VENV7)/.base: $(VENV)/.test tests/browser/legacy.py
	$(PY) tests/browser/legacy.py venv
	touch $@

$(WIDGET_CDN)/.installed: $(VENV)/.test tests/browser/legacy.py
	$(PY) tests/browser/legacy.py cdn
	touch $@

clean: clean-legacy

clean-legacy:
	rm -rf $(VENV7) $(WIDGET_CDN)
