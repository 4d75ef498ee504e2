# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch is pinned here (not in pyproject) so a fresh machine never pulls a CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-all lint install clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/seqgan-hf train --config recipes/oracle_quick.yaml

lint: install
	$(VENV)/bin/ruff check seqgan_hf tests benchmarks

test: install lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
