# AI4VA-FG: every user-facing command is a target here (see README.md).
# `make demo` and `make test` install into .venv first (idempotent), so each is one copy-paste
# command on a fresh machine.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= eval,train,dev
DATA ?= ai4va_fg_dataset/demo_data
OUT ?= build/ai4va_fg
TINY ?= build/tiny-qwen2.5-vl
PYTEST_ARGS ?=

.PHONY: install demo test tiny-model bench lint clean

$(VENV)/.installed: pyproject.toml constraints.txt .ci/patch_torchvision_cpu.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: on a CPU machine this takes the CPU wheel; the constraint keeps it afterwards.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(PY) .ci/patch_torchvision_cpu.py
	touch $@

install: $(VENV)/.installed

## Main job: build the AI4VA-FG benchmark from the embedded real pages (or DATA=../shared/data).
demo: install
	$(VENV)/bin/ai4va-fg build --source auto --path $(DATA) --out $(OUT) --seed 0

## The tiny offline Qwen2.5-VL used by tests and demos (no Hub access).
tiny-model: install
	$(PY) recipes/make_tiny_model.py --out $(TINY)

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check ai4va_fg_dataset lmms_eval_tasks trl_rarl recipes tests

clean:
	rm -rf build
