# procclean: the seed's targets, each one call to procclean.py, plus test and bench.
PYTHON ?= python3
PROCCLEAN = $(PYTHON) -m procclean
VENV ?= .venv
VENV_PY = $(VENV)/bin/python

SEED_TARGETS = start-backend start-frontend start stop-backend stop-frontend stop \
	restart-backend restart-frontend restart force-clean-backend force-clean-frontend \
	force-clean show-processes status clean doctor dev

.PHONY: $(SEED_TARGETS) test test-fast bench venv

$(SEED_TARGETS):
	@$(PROCCLEAN) $@

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The whole suite: unit, integration (PID namespaces) and e2e tiers; the slowest tests listed.
# On TEST_WORKERS pytest-xdist workers (6 suit 2 CPUs: most namespace tests wait on processes
# rather than compute); `make test TEST_WORKERS=0` runs it in this one process.
TEST_WORKERS ?= 6
test: $(VENV)/.installed
	$(VENV_PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15 tests

# The unit tier alone: recorded output and a fake system, in seconds.
test-fast: $(VENV)/.installed
	$(VENV_PY) -m pytest -q tests/unit

bench: $(VENV)/.installed
	$(VENV_PY) benchmarks/bench.py

# End-to-end fixture: the frontend's `npm ci` runs once per package-lock.json, cached under
# .cache/e2e-frontend/ (git-ignored); without npm the frontend e2e tests skip with a reason.
.PHONY: e2e-deps
e2e-deps:
	@if command -v npm >/dev/null 2>&1; then bash tests/e2e/prepare_frontend.sh >/dev/null; \
	else echo "e2e-deps: npm not found: the frontend e2e tests will skip"; fi

test: e2e-deps
