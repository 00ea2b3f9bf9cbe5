# Two commands do everything on a fresh machine (each sets itself up first):
#   make quickstart   the main job: synthetic sign corpus -> a CPU sweep -> leaderboard + report ->
#                     the best trial promoted into runs/NAME/promoted -> eval of the promoted file
#   make test         lint, type-check and the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
VS := $(VENV)/bin/vlp-sweep
STAMP := $(shell date +%Y%m%d-%H%M%S)
NAME ?= quickstart-$(STAMP)

.PHONY: setup quickstart test test-all test-fast lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on these machines (a plain `torch` would pull a CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

data/quickstart/meta.json: | setup
	$(VS) data synth --out data/quickstart

# The three uses, one after another: launch (the search, then its confirmation stage), read, promote the
# confirmed winner (and check that the promoted file gives its test numbers again: eval exits 1 if not).
quickstart: setup data/quickstart/meta.json
	$(VS) run search_spaces/quickstart.yaml --name $(NAME)
	$(VS) report runs/$(NAME)
	$(VS) promote runs/$(NAME) --to runs/$(NAME)/promoted
	$(VS) eval --ckpt runs/$(NAME)/promoted/vlp_best_full.pt --split test

# lint's last step: the package's imports run one way (cli > promote > report > sweep > space > train > data >
# top-level modules): no import up the layers, no cycle, no private name across packages (../shared/tools/layers.py).
lint: setup
	$(VENV)/bin/ruff check vlp_sweep tests benchmarks
	$(VENV)/bin/mypy
	@if [ -f ../shared/tools/layers.py ]; then $(PY) ../shared/tools/layers.py tests benchmarks; \
	else echo "layers: ../shared/tools/layers.py not found, not checked"; fi

test: lint
	$(VENV)/bin/pytest -q -ra -m "not heavy"

test-all: lint
	$(VENV)/bin/pytest -q -ra

test-fast: setup
	$(VENV)/bin/pytest -q -ra -m "not slow"

bench: setup
	$(PY) benchmarks/bench_trainer.py --device cpu
	$(PY) benchmarks/bench_metrics.py --device cpu --n 20000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
