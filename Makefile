# The two commands of the README, and what they need.
#   make demo   index the sample corpus on the embedded default, search it, ask it
#   make test   lint (ruff, the import layers), type-check and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first, so that nothing pulls in a multi-GB CUDA build.
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ragline ingest samples/corpus --collection samples
	$(BIN)/ragline search "how do I set up the oxygen probe so its readings are accurate" --k 3
	$(BIN)/ragline search "E-4471" --mode lexical --k 1
	$(BIN)/ragline ask "how long is the warranty on the TW-800"
	$(BIN)/ragline status

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks samples
	$(BIN)/ruff format --check src tests benchmarks samples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

docs: $(STAMP)
	$(BIN)/typer ragline.cli utils docs --name ragline --output docs/cli.md
