# jacobian_ik developer commands.  Everything runs from the project venv
# (.venv), which `make venv` creates and keeps in step with setup.py.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
EXTRAS := ros,sim,audit,test,lint
PYTEST_ARGS ?=

# ROS 2 processes started by make targets discover peers on loopback only.
# Tests also pick a ROS_DOMAIN_ID of their own (tests/conftest.py).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: venv test test-fast lint demo bench clean distclean

venv: $(STAMP)

# Re-installs whenever setup.py or setup.cfg changes.
$(STAMP): setup.py setup.cfg
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -e '.[$(EXTRAS)]'
	touch $@

# The whole suite (what CI runs).
test: $(STAMP)
	$(VPY) -m pytest -q $(PYTEST_ARGS)

# The edit-run loop: no ROS processes or nodes, no slow tests (markers in pytest.ini).
test-fast: $(STAMP)
	$(VPY) -m pytest -q -m "not ros and not slow" $(PYTEST_ARGS)

# ruff (rules in pyproject.toml) and mypy (every module outside jacobian_ik/kernels/).
lint: $(STAMP)
	$(VPY) -m ruff check .
	$(VPY) -m mypy

demo: $(STAMP)
	$(VPY) -m jacobian_ik.demo

# The benchmarks also need the `bench` extra (the peer they are measured against);
# `make test` does not.
$(BENCH_STAMP): $(STAMP)
	$(VPY) -m pip install -e '.[$(EXTRAS),bench]'
	touch $@

# Runs every bench/bench_*.py in name order (see bench/__main__.py).
bench: $(BENCH_STAMP)
	$(VPY) -m bench

clean:
	rm -rf build install log .pytest_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o \
	  \( -name __pycache__ -o -name '*.nbi' -o -name '*.nbc' \) -print0 \
	  | xargs -0 rm -rf

# clean, and remove the venv too.
distclean: clean
	rm -rf $(VENV)
