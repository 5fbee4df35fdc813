# jacobian_ik developer commands.  Everything runs from the project venv
# (.venv), which `make venv` creates and keeps in step with setup.py.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
EXTRAS := ros,sim,audit,telemetry,test,lint
PYTEST_ARGS ?=

# ROS 2 processes started by make targets discover peers on loopback only.
# Tests also pick a ROS_DOMAIN_ID of their own (tests/conftest.py).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: venv test test-fast lint demo bench clean distclean prometheus

venv: $(STAMP)

# Re-installs whenever setup.py or setup.cfg changes.  The install step ends
# with `jacobian-ik precompile`: numba's cache then holds every kernel and the
# controller starts in about a second.
$(STAMP): setup.py setup.cfg
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -e '.[$(EXTRAS)]'
	$(VENV)/bin/jacobian-ik precompile
	touch $@

# The whole suite (what CI runs).
test: $(STAMP) prometheus
	$(VPY) -m pytest -q $(PYTEST_ARGS)

# The edit-run loop: no ROS processes or nodes, no slow tests (markers in pytest.ini).
test-fast: $(STAMP)
	$(VPY) -m pytest -q -m "not ros and not slow" $(PYTEST_ARGS)

# ruff (rules in pyproject.toml) and mypy (every module outside jacobian_ik/kernels/).
lint: $(STAMP)
	$(VPY) -m ruff check .
	$(VPY) -m mypy

# The Prometheus server and promtool (Debian package `prometheus`) for the
# rules and dashboard tests: installed when missing and possible (root with
# apt-get, as in CI); elsewhere those tests skip and say why.  Idempotent.
prometheus:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus) \
	    || echo "make prometheus: could not install the prometheus package; its tests will skip"; \
	else \
	  echo "make prometheus: prometheus/promtool missing and not root with apt-get; their tests will skip"; \
	fi

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
