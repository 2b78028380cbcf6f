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

.PHONY: install lock demo eval-demo train-demo test tiny-model bench bench-build bench-scale bench-heap bench-eval bench-rarl lint clean

# The install is the lock: every distribution pinned (requirements/cpu.lock), then the project without
# dependencies, then `pip check`. `make lock` regenerates both locks (see README, "Install in detail").
# The CPU lock pins torch 2.13.0+cpu: pip finds it in PIP_FIND_LINKS on these machines; elsewhere pass
# PIP_INSTALL_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu".
PIP_INSTALL_ARGS ?=
LOCK ?= requirements/cpu.lock
$(VENV)/.installed: $(LOCK) pyproject.toml .ci/patch_torchvision_cpu.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(PIP_INSTALL_ARGS) -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) .ci/patch_torchvision_cpu.py
	$(PY) -m pip check
	touch $@

## Regenerate the locks from pyproject.toml + requirements/constraints.txt (needs the registry).
## GPU first (every extra but flash, CUDA torch, vLLM), then the CPU lock on the GPU lock's pins, so
## the two agree on every distribution they share. TORCH_CPU_SOURCE says where the CPU torch wheel is.
TORCH_CPU_SOURCE ?= --find-links /opt/wheels
# LOCK_ARGS=--upgrade moves every pin to the newest release the ranges allow (then run make test).
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml -c requirements/constraints.txt --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" --quiet $(LOCK_ARGS)
lock: install
	$(UV_COMPILE) --extra eval --extra train --extra deepspeed --extra vllm --extra review --extra scale --extra dev -o requirements/gpu.lock
	$(UV_COMPILE) --extra eval --extra train --extra deepspeed --extra review --extra scale --extra dev -c requirements/gpu.lock \
	  $(TORCH_CPU_SOURCE) -o requirements/cpu.lock
	grep -q '^torch==2.13.0+cpu$$' requirements/cpu.lock || { echo "cpu.lock: torch is not the CPU wheel (TORCH_CPU_SOURCE)"; exit 1; }

install: $(VENV)/.installed

## Main job: build the AI4VA-FG benchmark from the embedded real pages (or DATA=../shared/data).
# The link ai4va-fg -> $(OUT) lets a notebook in the repo root call load_dataset("ai4va-fg") (datasets
# resolves a local folder of that name before the Hub); an existing ai4va-fg that is not a link is left alone.
demo: install
	$(VENV)/bin/ai4va-fg build --source auto --path $(DATA) --out $(OUT) --seed 0 --split-ratios $(SPLIT_RATIOS) $(SKIP_BAD)
	if [ -L ai4va-fg ] || [ ! -e ai4va-fg ]; then ln -sfn $(OUT) ai4va-fg; else echo "ai4va-fg exists and is not a link: left alone"; fi

## The tiny offline Qwen2.5-VL used by tests and demos (no Hub access).
tiny-model: install
	$(PY) recipes/make_tiny_model.py --out $(TINY)

## Offline evaluation demo: the tiny model through the real lmms-eval CLI on the demo build, then the
## paper-style table and bar chart (scores of a random tiny model: a smoke run, not a result).
EVAL_OUT ?= build/eval/tiny
eval-demo: demo tiny-model
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/ai4va-fg eval --dataset $(abspath $(OUT)) --overlay build/eval/tasks \
	  --model qwen2_5_vl --model_args pretrained=$(TINY),device=cpu,device_map=cpu,min_pixels=3136,max_pixels=12544 \
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

# -rs: every skipped test is listed with its reason (only tests that need ../shared/data may skip).
test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -rs $(PYTEST_ARGS)

## Speed benchmarks (figures in README.md); BENCH_DATA defaults to the shared real pages.
BENCH_DATA ?= ../shared/data
bench-build: install
	$(PY) recipes/benchmarks/build_speed.py --data $(BENCH_DATA) --out build/bench/ai4va_fg

## Build scaling (issue 13): synthetic sets of SCALE_PAGES pages, --num-proc 1 and 2: pages/s, peak RSS,
## ratio to plain decode + encode, speed-up. 5,000 pages take about 20 min per run on 2 cores.
SCALE_PAGES ?= 200,1000,5000
bench-scale: install
	$(PY) recipes/benchmarks/scaling.py --pages $(SCALE_PAGES) --num-proc 1,2 --work build/bench/scale

## What a build keeps on the Python heap at 100 vs 400 pages (tracemalloc; issue 13).
bench-heap: install
	$(PY) recipes/benchmarks/build_heap.py --pages 100,400 --work build/bench/heap

bench-eval: tiny-model
	$(PY) recipes/benchmarks/eval_speed.py cpu --model $(TINY) --samples 16 --tokens 32

bench-rarl: tiny-model
	$(PY) recipes/benchmarks/rarl_speed.py --model $(TINY) --steps 8 --batch 8

bench: bench-build bench-eval bench-rarl

lint: install
	$(VENV)/bin/ruff check ai4va_fg_dataset lmms_eval_tasks trl_rarl recipes tests

clean:
	rm -rf build
