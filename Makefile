# AI4VA-FG: every user-facing command is a target here (see README.md).
# `make demo` and `make test` install into .venv first (idempotent), so each is one copy-paste
# command on a fresh machine.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= eval,train,dev
DATA ?= ai4va_fg_dataset/demo_data
OUT ?= build/ai4va_fg
# Bad annotation records are skipped and listed in $(OUT)/build_report.json (the real
# Mimi & Eunice data has 5 strips whose transcript and boxes disagree); SKIP_BAD= stops at the first.
SKIP_BAD ?= --skip-bad
TINY ?= build/tiny-qwen2.5-vl
PYTEST_ARGS ?=

.PHONY: install demo test tiny-model bench bench-build bench-eval bench-rarl lint clean

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
	$(VENV)/bin/ai4va-fg build --source auto --path $(DATA) --out $(OUT) --seed 0 $(SKIP_BAD)

## The tiny offline Qwen2.5-VL used by tests and demos (no Hub access).
tiny-model: install
	$(PY) recipes/make_tiny_model.py --out $(TINY)

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

## Speed benchmarks (figures in README.md); BENCH_DATA defaults to the shared real pages.
BENCH_DATA ?= ../shared/data
bench-build: install
	$(PY) recipes/benchmarks/build_speed.py --data $(BENCH_DATA) --out build/bench/ai4va_fg

bench-eval: tiny-model
	$(PY) recipes/benchmarks/eval_speed.py cpu --model $(TINY) --samples 16 --tokens 32

bench-rarl: tiny-model
	$(PY) recipes/benchmarks/rarl_speed.py

bench: bench-build bench-eval bench-rarl

lint: install
	$(VENV)/bin/ruff check ai4va_fg_dataset lmms_eval_tasks trl_rarl recipes tests

clean:
	rm -rf build
