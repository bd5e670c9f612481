# make demo: set up .venv, then check, compile and render every bundled spec into out/
# make test: set up .venv, then run the whole test suite
# make fuzz: 5,200 random programs through every path, plus lengths and dropout in training (about 20 min on 2 cores; FUZZ_N=... per kind); make hostile: every attack case
# SEQDSL_ACCEPT=1 make test regenerates the golden files (review them with git diff)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench golden gallery lint clean fuzz hostile

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v dot >/dev/null 2>&1 || { echo "installing graphviz (dot)"; \
	  (apt-get update -qq && apt-get install -y -qq graphviz) >/dev/null 2>&1 || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq graphviz) >/dev/null 2>&1 || \
	  echo "warning: could not install graphviz; rendering to SVG/PNG will say so"; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,torch,plot,train]'
	$(BIN)/python -m compileall -q seqdsl >/dev/null  # bytecode up front: a cold `seqdsl check` pays no compile
	touch $(STAMP)

demo: setup
	$(BIN)/python -m seqdsl.demo specs out

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 tests  # one BLAS/torch thread per worker: two workers share the 2 cores

# random well-typed programs through every compile path (tests/programs.py); FUZZ_N per kind
FUZZ_N ?= 1600
fuzz: setup
	SEQDSL_FUZZ_EXAMPLES=$(FUZZ_N) SEQDSL_FUZZ_SHARDS=4 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 tests/test_differential.py  # one torch thread per worker: two would oversubscribe the cores

# the attack suite, slow cases included
hostile: setup
	$(BIN)/python -m pytest -n 2 tests/hostile -m "slow or not slow"

bench: setup
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_render.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/bench_numpy.py
	$(BIN)/python benchmarks/bench_torch.py
	$(BIN)/python benchmarks/bench_limits.py
	$(BIN)/python benchmarks/bench_lengths.py
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_train.py

gallery: setup
	$(BIN)/python -m seqdsl.gallery docs/gallery

golden: setup
	SEQDSL_ACCEPT=1 $(BIN)/python -m pytest -n 2 tests

lint: setup
	$(BIN)/ruff check seqdsl tests benchmarks tools
	$(BIN)/python tools/check_structure.py

clean:
	rm -rf out build dist *.egg-info
