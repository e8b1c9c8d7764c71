# dialtone: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test bench venv system-run system-test proto lint clean helm

run: system-run venv
	$(VENV)/bin/dialtone up

test: system-test venv helm
	$(PY) -m pytest $(PYTEST_ARGS)

bench: system-test venv
	$(PY) -m bench $(BENCH_ARGS)

venv: $(STAMP) proto

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	$(PY) scripts/fetch_smart_turn.py
	touch $(STAMP)

# Regenerate dialtone.v1 from proto/ (also done by the package build).
proto: $(STAMP)
	$(PY) proto/generate.py

system-run:
	bash scripts/system-deps.sh run

system-test:
	bash scripts/system-deps.sh test

# The pinned helm binary for the chart tests, in .cache/bin/helm (fetched once, offline after).
helm:
	bash scripts/install-helm.sh

lint: venv
	$(VENV)/bin/ruff check services tests bench

clean:
	rm -rf $(VENV) build services/v1/*_pb2*.py services/v1/*_pb2*.pyi
