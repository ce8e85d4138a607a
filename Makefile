# make demo: a fresh .venv, then init, train, test, info and create_release of experiments/demo.
# make test: a fresh .venv with the test extras, then the whole test suite; make test-fast: without the slow tests.
# make serve: the demo's release as a web page to draw on and an HTTP API, on http://127.0.0.1:8000/.
# make bench: the speed benchmarks (benchmarks/*.py).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_PATH ?= data
EPOCHS ?= 10
NAME ?= demo
# Where to copy the four MNIST .gz files from when $(DATA_PATH) has none and there is no network (optional).
MNIST_DIR ?=
CLI := $(PY) -m mnist_classifier --experiment-name $(NAME) --data-path $(DATA_PATH) --verbose

.PHONY: install demo serve test test-fast lint bench clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,serve,sweep,export]'
	$(PY) -m mnist_classifier.export.web_runtime > /dev/null  # ONNX Runtime Web for export's page, from npm, cached
	$(PY) -m mnist_classifier.training.web_fonts > /dev/null  # handwriting fonts for data.typed_digits, from npm, cached
	touch $@

install: $(VENV)/.installed

demo: install
	@if [ -n "$(MNIST_DIR)" ] && [ ! -e "$(DATA_PATH)/MNIST/raw/train-images-idx3-ubyte" ]; then \
		mkdir -p "$(DATA_PATH)/MNIST/raw" && cp "$(MNIST_DIR)"/*-ubyte.gz "$(DATA_PATH)/MNIST/raw/"; fi
	@if [ -d experiments/$(NAME) ]; then echo "experiments/$(NAME) exists: resuming it"; \
		else $(CLI) init --config-path config.default.json --config-schema-file config.schema.json; fi
	$(CLI) train --max-epochs $(EPOCHS)
	$(CLI) test --epoch $(EPOCHS)
	$(CLI) info
	$(CLI) create_release --epoch $(EPOCHS)

PORT ?= 8000
serve: install
	$(PY) -m mnist_classifier serve --release experiments/$(NAME)/checkpoints/$(EPOCHS).checkpoint.release.pkl \
		--port $(PORT)

# Two pytest-xdist workers, one per core here: most tests wait on subprocesses (torch imports, process groups).
# Each test module stays on one worker (--dist loadscope), so its module fixtures are built once.
test: install
	$(PY) -m pytest -q -n 2 --dist loadscope

test-fast: install
	$(PY) -m pytest -q -n 2 --dist loadscope -m "not slow"

lint: install
	$(PY) -m ruff check .

# Epoch and test throughput against the compute bound and the plain PyTorch recipe (JSON on stdout).
# MNIST_DIR=... uses real MNIST (synthetic of the same size otherwise); BENCH_ARGS="--device cuda --epochs 10".
# Then 1 process against PROCESSES (default 2) on the same epoch: images/s of each and the scaling ratio.
# Then data.augmentation's share of a training step, and serve's POST /predict: p50/p99 latency for one and
# eight clients, against predicting in process. Then a sweep's trials per hour, 1 worker against PROCESSES.
# Last, the share of benchmarks/pictures/ (typed solid and hollow, handwriting fonts, handwritten and real scanned
# digits; its held-out and tuning parts) that the demo's release reads right, the share of its pictures of no digit
# that it calls unsure or no digit, and how long preparing a picture takes.
PROCESSES ?= 2
bench: install
	MNIST_DIR="$(MNIST_DIR)" $(PY) benchmarks/epoch.py $(BENCH_ARGS)
	MNIST_DIR="$(MNIST_DIR)" $(PY) benchmarks/processes.py --processes $(PROCESSES) $(PROCESSES_ARGS)
	$(PY) benchmarks/augmentation.py
	$(PY) benchmarks/serve.py
	$(PY) benchmarks/sweep.py --workers $(PROCESSES)
	@release=experiments/$(NAME)/checkpoints/$(EPOCHS).checkpoint.release.pkl; \
	if [ -e $$release ]; then $(PY) benchmarks/pictures.py $$release; \
	else echo "benchmarks/pictures.py skipped: no $$release (make demo makes it)"; fi

clean-demo:
	rm -rf experiments/$(NAME)
