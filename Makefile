# Everything bootstraps .venv from nothing: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: install demo test docs clean

# pip shows what it installs (and its bars on a terminal): a fresh install takes minutes, and a
# silent one looks hung. Each step says what it does first.
$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	@echo "[1/3] $(VENV): creating the virtual environment (if missing)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[2/3] torch 2.14.1 and torchvision 0.29.1 (pinned; about a minute from this machine's local copy)"
	$(BIN)/python -m pip install --progress-bar on torch==2.14.1 torchvision==0.29.1
	@echo "[3/3] vitcore and its plugins, editable, with their dependencies (a few minutes on a fresh machine): $(PLUGINS)"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)
	@echo "Installed into $(VENV): vitcore and $(words $(PLUGINS)) plugins."

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vitcore run examples/quickstart.json

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

docs: $(STAMP)
	$(BIN)/python -m vitcore.specdoc > docs/SPEC.md

clean:
	rm -rf $(VENV) runs
