# One environment for SpikingJelly, Lava and lava-dl on Python 3.11.  Pins: requirements/constraints.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
PIPC := $(PIP) install --disable-pip-version-check -c $(CONSTRAINTS)
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIPC) torch torchvision
	$(PIPC) -e '.[spikingjelly,lava,ray,sanafe,dev]'
	$(PIPC) --no-deps spikingjelly trackeval
	$(PIPC) --no-deps --ignore-requires-python lava-nc lava-dl
	$(PY) -c "from neurons.lava_compat import import_lava; import_lava('lava.lib.dl.netx'); import spikingjelly.activation_based.neuron"
	touch $(STAMP)

test: install
	$(PY) -m pytest

demo: install
	$(PY) -m evals.run --backend spikingjelly

bench: install
	$(PY) -m evals.bench
	$(PY) -m evals.bench_lava
	$(PY) -m evals.bench_workers

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
