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
# The embedded set has 13 pages: 60/20/20 gives validation and test a few pages each; any other
# DATA (e.g. ../shared/data) gets the builder's default 80/10/10. Splits are always by page.
comma := ,
SPLIT_RATIOS ?= $(if $(filter ai4va_fg_dataset/demo_data,$(DATA)),0.6$(comma)0.2$(comma)0.2,0.8$(comma)0.1$(comma)0.1)
TINY ?= build/tiny-qwen2.5-vl
PYTEST_ARGS ?=

.PHONY: install demo eval-demo train-demo test tiny-model bench bench-build bench-eval bench-rarl lint clean

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
	$(VENV)/bin/ai4va-fg build --source auto --path $(DATA) --out $(OUT) --seed 0 --split-ratios $(SPLIT_RATIOS) $(SKIP_BAD)

## The tiny offline Qwen2.5-VL used by tests and demos (no Hub access).
tiny-model: install
	$(PY) recipes/make_tiny_model.py --out $(TINY)

## Offline evaluation demo: the tiny model through the real lmms-eval CLI on the demo build, then the
## paper-style table and bar chart (scores of a random tiny model: a smoke run, not a result).
EVAL_OUT ?= build/eval/tiny
eval-demo: demo tiny-model
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/lmms-eval --model qwen2_5_vl \
	  --model_args pretrained=$(TINY),device=cpu,device_map=cpu,min_pixels=3136,max_pixels=12544 \
	  --include_path "$$($(PY) -m lmms_eval_tasks.path --dataset $(abspath $(OUT)) --out build/eval/tasks)" \
	  --tasks ai4va_fg --limit 4 --gen_kwargs max_new_tokens=16 --output_path $(EVAL_OUT) --log_samples
	$(VENV)/bin/ai4va-fg report $(EVAL_OUT) --out $(EVAL_OUT)/report

## Offline training demo: 2 RARL steps (warm start + curriculum) with the tiny model on CPU, on a
## SYNTHETIC AI4VA-schema set (the real demo pages carry no character boxes).
SYN ?= build/synthetic
train-demo: tiny-model
	$(PY) -m ai4va_fg_dataset.synthetic --out $(SYN)/pages --pages 12
	$(VENV)/bin/ai4va-fg build --source synthetic --path $(SYN)/pages/synthetic_ai4va.json --out $(SYN)/ai4va_fg --no-contact-sheet
	HF_HUB_OFFLINE=1 $(VENV)/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/rarl.py \
	  --config recipes/configs/rarl_tiny_cpu.yaml --dataset_path $(SYN)/ai4va_fg \
	  --model_name_or_path $(TINY) --output_dir build/rarl-tiny

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

## Speed benchmarks (figures in README.md); BENCH_DATA defaults to the shared real pages.
BENCH_DATA ?= ../shared/data
bench-build: install
	$(PY) recipes/benchmarks/build_speed.py --data $(BENCH_DATA) --out build/bench/ai4va_fg

bench-eval: tiny-model
	$(PY) recipes/benchmarks/eval_speed.py cpu --model $(TINY) --samples 16 --tokens 32

bench-rarl: tiny-model
	$(PY) recipes/benchmarks/rarl_speed.py --model $(TINY) --steps 8 --batch 8

bench: bench-build bench-eval bench-rarl

lint: install
	$(VENV)/bin/ruff check ai4va_fg_dataset lmms_eval_tasks trl_rarl recipes tests

clean:
	rm -rf build
