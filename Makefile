# Two commands on a fresh machine with Python 3.11+:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Salvage needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/salvage demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check daemon providers tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_classify.py
	$(BIN)/python benchmarks/bench_google.py
	$(BIN)/python benchmarks/bench_microsoft.py
	$(BIN)/python benchmarks/bench_mailboxes.py
	$(BIN)/python benchmarks/bench_idle.py --seconds 300
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_pathological.py

clean:
	rm -rf $(VENV) salvage-demo build dist *.egg-info
