# Everything bootstraps .venv from nothing: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: install demo test docs clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: these versions install from this machine's local copy.
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vitcore run examples/quickstart.json

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

docs: $(STAMP)
	$(BIN)/python -m vitcore.specdoc > docs/SPEC.md

clean:
	rm -rf $(VENV) runs
