"""Every shipped training recipe runs as written, on CPU with the tiny offline Qwen2.5-VL.

* Every ``recipes/configs/*.yaml`` trains through its recipe script (``main()`` of ``recipes/rarl.py``,
  ``grpo.py`` or ``sft.py``) from the file itself (``--config``), with only the command-line overrides of
  :data:`CONFIG_RUNS`, its own ``report_to`` (TensorBoard event files checked), dtype, gradient checkpointing,
  checkpointing and judge (a fake OpenAI-compatible judge on 127.0.0.1 for ``rarl_open``).
* Every ``recipes/accelerate/*.yaml`` launches one RARL run (``accelerate launch``) with only the launch
  overrides of :data:`ACCELERATE_RUNS`; the multi-process ones (DDP over gloo, DeepSpeed ZeRO-2/3 on the CPU
  accelerator) check per-rank environments and rewards and metrics gathered over both ranks.
* ``--use_peft --lora_r 64 --lora_alpha 128`` (the README's LoRA flags) trains a language-model-only adapter.

A test fails when a config or accelerate file appears that its table does not name.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
ACCELERATE = REPO / "recipes" / "accelerate"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_http import LocalServer, read_body, send_json
from test_rarl_recipes import _recipe
from test_rarl_trainer import GT, PAGE, _page, make_samples, tiny_model  # noqa: F401  (session fixture)

# --------------------------------------------------------------------------------------------------------------
# THE override table: everything a run changes in a shipped config, and why. Placeholders are filled per run.
TINY = "<the tiny model of the tiny_model fixture>"
OUT = "<a temporary output folder>"
TRAJECTORIES = "<the SFT-R trajectories file this test writes>"
FAKE_JUDGE = "<base URL of the fake OpenAI-compatible judge this test serves>"

_CPU = {"use_cpu": True, "bf16": False}
_RL_ONE_SMALL_STEP = {"max_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                      "num_generations": 2, "max_completion_length": 32, "use_vllm": False,
                      "generation_kwargs": {"suppress_tokens": [5, 6]}}
_SFT_ONE_SMALL_STEP = {"max_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1}
_TINY = {"model_name_or_path": TINY, "output_dir": OUT}

CONFIG_RUNS: dict[str, tuple[str, dict]] = {
    "grpo_qwen2_5_vl_7b.yaml": ("grpo", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_focus_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_open_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP, "judge_base_url": FAKE_JUDGE}),
    "sft_s_qwen2_5_vl_7b.yaml": ("sft", {**_TINY, **_CPU, **_SFT_ONE_SMALL_STEP}),
    "sft_r_qwen2_5_vl_7b.yaml": ("sft", {**_TINY, **_CPU, **_SFT_ONE_SMALL_STEP, "trajectories": TRAJECTORIES}),
    "rarl_tiny_cpu.yaml": ("rarl", {**_TINY}),  # made for CPU and the tiny model: as written (2 steps, 2 stages)
    # category-wise runs (thesis: action & depth; reordering; character), one step each
    "grpo_action_depth_qwen2_5_vl_7b.yaml": ("grpo", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "grpo_reordering_qwen2_5_vl_7b.yaml": ("grpo", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "grpo_character_qwen2_5_vl_7b.yaml": ("grpo", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_action_depth_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_reordering_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
    "rarl_character_qwen2_5_vl_7b.yaml": ("rarl", {**_TINY, **_CPU, **_RL_ONE_SMALL_STEP}),
}
"""``{config file name: (recipe, {option: command-line override})}``: everything a run changes in a shipped config.
Each run also gets ``--dataset_path`` (required on every README command). Reasons, one per override:

* ``model_name_or_path``: the 7B model can be neither downloaded (offline) nor trained on 2 CPU cores: the tiny
  model. ``output_dir``: a temporary folder instead of ``outputs/`` in the repository.
* ``max_steps: 1`` and small ``per_device_train_batch_size`` / ``gradient_accumulation_steps`` /
  ``num_generations`` / ``max_completion_length``: one small step on CPU (the 7B sizes need 8 GPUs).
* ``use_vllm: false``: vLLM is CUDA-only; rollouts use transformers ``generate``.
* ``bf16: false`` and ``use_cpu: true``: no GPU (bf16 mixed precision is a GPU setting of these configs).
* ``generation_kwargs.suppress_tokens``: the random tiny model samples ``<|image_pad|>``/``<|video_pad|>``, which
  crash Qwen2.5-VL's rope index; a real model never writes them.
* ``trajectories``: SFT-R's file comes from ``recipes/distill_sft_r.py`` (a teacher API); the test writes one.
* ``judge_base_url``: ``rarl_open`` judges with ``gpt-4o-mini`` on the OpenAI API (no network here): the same
  provider and model, served by a fake OpenAI-compatible judge on 127.0.0.1.

Everything else (dtype, attention, gradient checkpointing, learning-rate schedule, curriculum, warm start,
rewards, turns, ``report_to``, saving) is the file's own, and the test checks it is in force.
"""

LAUNCHED_CONFIG = "rarl_tiny_cpu.yaml"
"""The config every accelerate launch trains (:func:`test_accelerate_config_trains_rarl`, as written but for the
overrides above): it runs there, through ``recipes/rarl.py``, and not again in-process
(:func:`test_config_trains_as_written` runs the others)."""

ACCELERATE_RUNS: dict[str, tuple[int, list[str], dict[str, str]]] = {
    "cpu.yaml": (1, ["--num_cpu_threads_per_process", "1"], {}),
    "single_gpu.yaml": (1, [], {}),
    "multi_gpu.yaml": (2, ["--num_processes", "2"], {}),
    "zero2.yaml": (2, ["--num_processes", "2", "--mixed_precision", "no"], {"DS_ACCELERATOR": "cpu"}),
    "zero3.yaml": (2, ["--num_processes", "2", "--mixed_precision", "no"], {"DS_ACCELERATOR": "cpu"}),
}
"""``{accelerate config: (processes, launch overrides, environment)}``; every launch trains :data:`LAUNCHED_CONFIG`
with its :data:`CONFIG_RUNS` overrides, and multi-process launches also get a free ``--main_process_port`` (tests
may run next to each other). Reasons:

* ``--num_processes 2``: 2 CPU cores instead of 8 GPUs; without a GPU, accelerate's DDP and DeepSpeed use gloo.
* ``--mixed_precision no`` (DeepSpeed): ``rarl_tiny_cpu.yaml`` trains in fp32 (``bf16: false``), and DeepSpeed
  refuses a precision that disagrees with the training arguments (``ds bf16.enabled=True vs hf bf16=False``).
  The GPU pairs agree: the 7B configs set ``bf16: true``. DDP and single-process runs take the file's bf16.
* ``DS_ACCELERATOR=cpu``: DeepSpeed's CPU accelerator (without oneCCL it communicates over gloo).
* ``--num_cpu_threads_per_process 1`` (``cpu.yaml``, ``use_cpu: true``): accelerate's default for CPU runs is one
  OpenMP thread per core (2 here); with the cores shared by the pytest process and other tests, 2 spinning
  threads made this run 3-4x slower (119-147 s instead of 40 s). The other launches already use 1 thread.
"""


# --------------------------------------------------------------------------------------------------------------
def test_every_config_is_in_the_table():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(CONFIG_RUNS), (
        "a config in recipes/configs/ is missing from CONFIG_RUNS (or the table names a removed one)"
    )


def test_every_accelerate_config_is_in_the_table():
    assert sorted(p.name for p in ACCELERATE.glob("*.yaml")) == sorted(ACCELERATE_RUNS), (
        "an accelerate config in recipes/accelerate/ is missing from ACCELERATE_RUNS (or the table names a removed one)"
    )


def _flags(overrides: dict, fill: dict) -> list[str]:
    """``{option: value}`` -> ``["--option", "value", ...]`` (booleans lower-case, dicts/lists as JSON)."""
    out = []
    for key, value in overrides.items():
        value = fill.get(value, value) if isinstance(value, str) else value
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        out += [f"--{key}", str(value)]
    return out


@pytest.fixture(scope="session")
def all_tasks_dataset(tmp_path_factory):
    """The trainer tests' samples plus Character Identification, Panel Understanding (open answers) and the two
    reordering tasks' rows (no boxes), so every task a config trains on has rows."""
    from ai4va_fg_dataset.build.export import write_dataset
    from ai4va_fg_dataset.schema import Sample

    samples = make_samples()
    for i in range(4):
        common = {"page_id": f"p{i}", "source": "test", "width": PAGE[0], "height": PAGE[1], "image": _page(i)}
        samples.append(Sample(id=f"character_identification/p{i}/0", task="character_identification",
                              question="Who is the marked character?", choices=["Muzo", "Pipo", "Zaza"],
                              answer="A", answer_type="choice", bboxes=[GT], **common))
        samples.append(Sample(id=f"panel_understanding/p{i}/0", task="panel_understanding",
                              question="What happens in the marked panel?", answer="the hero sits down",
                              answer_type="open", bboxes=[GT], **common))
        for task in ("dialog_reordering", "panel_reordering"):  # the GRPO curriculum's reordering stage
            samples.append(Sample(id=f"{task}/p{i}/0", task=task, question="Which order is correct?",
                                  choices=["1, 2, 3", "2, 1, 3"], answer="A", answer_type="choice", **common))
    out = tmp_path_factory.mktemp("ai4va_fg_all") / "ds"
    write_dataset(samples, out, splits={s.page_id: "train" for s in samples})
    return str(out)


class FakeJudge(LocalServer):
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1 that answers the verdict ``{"correct": true}``
    (the format of the one judge of training and evaluation, ``ai4va_fg_dataset.core.llm.Judge``) and records
    requests."""

    def __init__(self):
        self.requests: list[dict] = []
        super().__init__()

    def handle(self, req):
        self.requests.append(json.loads(read_body(req)))
        send_json(req, 200, {"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": '{"correct": true}'}}]})


def _tensorboard_scalars(logdir: Path) -> dict[str, list[float]]:
    """``{tag: [values]}`` of every TensorBoard event file under ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for run in {p.parent for p in logdir.rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(run))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def _as_plain(value):
    """Enum options (``lr_scheduler_type``, ``optim``, ``save_strategy``) as their YAML strings."""
    return getattr(value, "value", value)


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(set(CONFIG_RUNS) - {LAUNCHED_CONFIG}))
def test_config_trains_as_written(config, tiny_model, all_tasks_dataset, tmp_path, monkeypatch):  # noqa: F811
    import torch

    recipe, overrides = CONFIG_RUNS[config]
    written = yaml.safe_load((CONFIGS / config).read_text())
    out = tmp_path / "out"
    fill = {TINY: tiny_model, OUT: str(out)}
    judge = None
    if "trajectories" in overrides:
        traj = tmp_path / "traj.jsonl"
        traj.write_text("".join(json.dumps({"id": f"{t}/p{i}/0", "trajectory": "<think>look</think><answer>A</answer>"})
                                + "\n" for t in ("action_recognition", "depth_comparison") for i in range(4)))
        fill[TRAJECTORIES] = str(traj)
    if written.get("judge_provider"):
        from rarl_launch_driver import scripted_generate

        from trl_rarl.trainer import RARLTrainer

        judge = FakeJudge()
        fill[FAKE_JUDGE] = judge.base_url
        monkeypatch.setenv("AI4VA_FG_JUDGE_CACHE", str(tmp_path / "judge_cache"))  # no verdict from an earlier run
        # the random model never closes an <answer>: script direct answers so that the judge is asked
        monkeypatch.setattr(RARLTrainer, "_generate_single_turn",
                            scripted_generate(RARLTrainer._generate_single_turn, "answer"))
    argv = ["--config", str(CONFIGS / config), "--dataset_path", all_tasks_dataset, *_flags(overrides, fill)]
    try:
        trainer = _recipe(recipe).main(argv)
    finally:
        if judge:
            judge.close()

    args = trainer.args
    assert trainer.state.global_step == overrides["max_steps"]
    # every option of the file not overridden is in force, as written
    for key, value in written.items():
        if key not in overrides and hasattr(args, key):
            actual = args.reward_weights_by_name if key == "reward_weights" and isinstance(value, dict) else getattr(args, key)
            assert _as_plain(actual) == ([] if (key, value) == ("report_to", "none") else value), key
    for key in ("dtype", "attn_implementation"):  # ModelConfig options reach from_pretrained
        if key in written:
            assert args.model_init_kwargs[key] == written[key]
    if written.get("dtype") == "bfloat16":
        assert trainer.accelerator.unwrap_model(trainer.model).dtype == torch.bfloat16
    assert (out / "model.safetensors").is_file()
    if written.get("save_strategy") == "epoch":  # the epoch ends at max_steps: a checkpoint is written
        assert (out / f"checkpoint-{trainer.state.global_step}").is_dir()

    if "tensorboard" in written.get("report_to", []):
        assert args.report_to == ["tensorboard"]
        scalars = _tensorboard_scalars(out / "runs")
        assert "train/train_runtime" in scalars, sorted(scalars)
        if recipe != "sft":  # logging_steps 1: the step's rewards are logged
            assert "train/reward" in scalars and "train/kl" in scalars, sorted(scalars)
        if recipe == "rarl":
            assert "train/zoom/calls_per_sample" in scalars and "train/schedule/phase" in scalars
        if written.get("curriculum_stages"):  # RARL and GRPO: the shared curriculum logs its stage
            assert scalars["train/schedule/stage"] == [0.0], sorted(scalars)
    else:
        assert not list(out.rglob("events.out.tfevents.*"))
    if judge:
        assert judge.requests, "the LLM judge was never asked"
        assert {r["model"] for r in judge.requests} == {written["judge_model"]}
        prompt = judge.requests[0]["messages"][0]["content"]
        prompt = prompt if isinstance(prompt, str) else " ".join(p.get("text", "") for p in prompt)
        assert "Reference answer: the hero sits down" in prompt and "Model answer: B" in prompt
        # "B" is not the reference: only the judge's verdict makes it correct
        assert _tensorboard_scalars(out / "runs")["train/rewards/accuracy_reward/mean"] == [1.0]


# --------------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zero_skip_reason(accelerate_config: str) -> str | None:
    """Why a DeepSpeed launch cannot run on this machine, or ``None``."""
    if "deepspeed_config" not in yaml.safe_load((ACCELERATE / accelerate_config).read_text()):
        return None
    try:
        import deepspeed  # noqa: F401
    except ImportError as exc:
        return f"deepspeed is not installed (the `deepspeed` extra): {exc}"
    if not (shutil.which("c++") or shutil.which("g++")):
        return ("DeepSpeed's CPU accelerator JIT-compiles its shared-memory communication op (deepspeed_shm_comm) "
                "at start-up and no C++ compiler (c++/g++) is on PATH")
    return None


@pytest.mark.slow
@pytest.mark.parametrize("accelerate_config", sorted(ACCELERATE_RUNS))
def test_accelerate_config_trains_rarl(accelerate_config, tiny_model, all_tasks_dataset, tmp_path):  # noqa: F811
    """One RARL run of :data:`LAUNCHED_CONFIG` (2 steps, 2 curriculum stages) under ``accelerate launch``.

    Generations are scripted per rank (``tests/rarl_launch_driver.py``): rank 0's even rollouts zoom once, every
    other rollout answers at once. Checked: each rank's environments were reset with that rank's own rows and
    recorded only their own zoom calls; the rewards every rank sees are all ranks' rows in rank order; the
    logged rewards and zoom metrics are averages over every rank's rollouts (a rank-local average would differ);
    the ranks stay in the same curriculum stage; the saved model is complete and trained (ZeRO-3: gathered).
    Under ZeRO-3 the ranks' rollouts take different numbers of turns, which hung TRL's per-turn weight gather.
    """
    import torch
    from safetensors.torch import load_file

    reason = _zero_skip_reason(accelerate_config)
    if reason:
        pytest.skip(reason)
    processes, launch_overrides, env_overrides = ACCELERATE_RUNS[accelerate_config]
    _, tiny_overrides = CONFIG_RUNS[LAUNCHED_CONFIG]
    out, dumps = tmp_path / "out", tmp_path / "ranks"
    port = ["--main_process_port", str(_free_port())] if processes > 1 else []
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / accelerate_config),
           *launch_overrides, *port, str(REPO / "tests" / "rarl_launch_driver.py"), str(dumps),
           "--config", str(CONFIGS / LAUNCHED_CONFIG), "--dataset_path", all_tasks_dataset,
           *_flags(tiny_overrides, {TINY: tiny_model, OUT: str(out)})]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": str(REPO), **env_overrides}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=540, check=False)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]

    ranks = [json.loads((dumps / f"rank{r}.json").read_text()) for r in range(processes)]
    assert [d["world_size"] for d in ranks] == [processes] * processes
    stages = [st.split(":") for st in yaml.safe_load((CONFIGS / LAUNCHED_CONFIG).read_text())["curriculum_stages"]]
    assert all(steps == "1" and "," not in task for task, steps in stages)  # one task per step: rows checkable
    stage_tasks = [task for task, _ in stages]
    assert [len(d["batches"]) for d in ranks] == [len(stage_tasks)] * processes
    logs = [h for h in ranks[0]["log_history"] if "loss" in h]
    assert [h["schedule/stage"] for h in logs] == [0.0, 1.0] and [h["schedule/phase"] for h in logs] == [0.0, 1.0]
    for step, (task, log) in enumerate(zip(stage_tasks, logs)):
        batches = [d["batches"][step] for d in ranks]
        local_n = len(batches[0]["input_ids"])
        for rank, b in enumerate(batches):
            assert b["step"] == step
            assert b["env_ids"] == b["input_ids"] and b["env_objects"] == local_n  # own environment per rollout
            assert all(i.startswith(task + "/") for i in b["input_ids"])  # every rank in the same stage
            expected_calls = [1 if rank == 0 and i % 2 == 0 else 0 for i in range(local_n)]
            assert b["env_calls"] == expected_calls
            assert b["rewards"] == batches[0]["rewards"]  # gathered: every rank sees every row
        prompt_sets = [set(b["input_ids"]) for b in batches]
        assert len(set().union(*prompt_sets)) == processes  # each rank trains on its own prompt
        rewards = torch.tensor(batches[0]["rewards"])
        assert rewards.shape[0] == processes * local_n
        tool_count = rewards[:, batches[0]["reward_names"].index("tool_count_reward")]
        calls = torch.tensor([c for b in batches for c in b["env_calls"]], dtype=torch.float32)
        assert torch.equal(tool_count > 0, calls > 0)  # rows in rank order, each scored on its own environment
        # logged values average every rank's rollouts
        assert log["zoom/calls_per_sample"] == pytest.approx(calls.mean().item())
        for j, name in enumerate(batches[0]["reward_names"]):
            assert log[f"rewards/{name}/mean"] == pytest.approx(rewards[:, j].mean().item(), abs=1e-5)
        assert log["grad_norm"] > 0
    if processes > 1:
        assert logs[0]["zoom/calls_per_sample"] == pytest.approx(1 / (2 * processes))  # rank 0 alone: 1/2

    start, trained = load_file(str(Path(tiny_model) / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert {k: trained[k].shape for k in start if k in trained} == {k: v.shape for k, v in start.items()}
    for extra in set(trained) - set(start):  # ZeRO-2 also writes the tied output embedding (tie_word_embeddings)
        assert extra == "lm_head.weight" and torch.equal(trained[extra], trained["model.embed_tokens.weight"])
    changed = [k for k in start if not torch.equal(start[k], trained[k])]
    assert any(".layers." in k for k in changed) and any(k.startswith("visual.") for k in changed)


# --------------------------------------------------------------------------------------------------------------
LORA_FLAGS = ["--use_peft", "--lora_r", "64", "--lora_alpha", "128"]  # README: appended to a recipe command


@pytest.mark.slow
@pytest.mark.parametrize("recipe, config, steps", [
    ("rarl", "rarl_qwen2_5_vl_7b.yaml", 1),
    ("grpo", "grpo_qwen2_5_vl_7b.yaml", 1),
    ("sft", "sft_s_qwen2_5_vl_7b.yaml", 2),  # warmup_steps 0.1 of 1 step = 1 step at lr 0: the 2nd step trains
])
def test_lora_flags_train_the_language_model_only(recipe, config, steps, tiny_model, all_tasks_dataset,  # noqa: F811
                                                  tmp_path, monkeypatch):
    """A config of :data:`CONFIG_RUNS` with ``--use_peft --lora_r 64 --lora_alpha 128``: a rank-64 adapter on the
    attention and MLP projections of every decoder layer, trained; the vision tower (whose MLP has
    gate/up/down_proj too) untouched and frozen; the saved adapter has no vision weight."""
    import torch
    from rarl_launch_driver import scripted_generate
    from safetensors.torch import load_file
    from trl import GRPOTrainer

    from trl_rarl.recipe_setup import LANGUAGE_LORA_TARGET_MODULES

    # rollouts with unequal rewards, so the RL adapters get a gradient (the random model's rewards are all equal)
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn",
                        scripted_generate(GRPOTrainer._generate_single_turn, "format"))
    _, overrides = CONFIG_RUNS[config]
    out = tmp_path / "out"
    argv = ["--config", str(CONFIGS / config), "--dataset_path", all_tasks_dataset,
            *_flags({**overrides, "max_steps": steps}, {TINY: tiny_model, OUT: str(out)}), *LORA_FLAGS]
    trainer = _recipe(recipe).main(argv)

    model = trainer.accelerator.unwrap_model(trainer.model)
    cfg = model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.target_modules) == (64, 128, LANGUAGE_LORA_TARGET_MODULES)
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    layers = model.get_base_model().config.text_config.num_hidden_layers
    expected = {f"base_model.model.model.language_model.layers.{i}.{m}" for i in range(layers)
                for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")}
    assert adapted == expected
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert not [n for n, p in model.named_parameters() if "visual" in n and p.requires_grad]
    # trained: every LoRA B (initialised to zero) moved
    assert all(p.detach().abs().sum() > 0 for n, p in trainable.items() if ".lora_B." in n)
    # the vision tower kept the tiny model's weights
    start = load_file(str(Path(tiny_model) / "model.safetensors"))
    visual = {n.split("visual.", 1)[1]: p for n, p in model.named_parameters() if ".visual." in n}
    assert visual and all(torch.equal(p.detach(), start["visual." + k].to(p.dtype)) for k, p in visual.items())
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert saved and not [k for k in saved if "visual" in k]
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"] == LANGUAGE_LORA_TARGET_MODULES


def test_lora_defaults_keep_user_targets_and_leave_full_finetuning_alone():
    from trl import ModelConfig

    from trl_rarl.recipe_setup import LANGUAGE_LORA_TARGET_MODULES, apply_lora_defaults

    full = ModelConfig(model_name_or_path="m")
    apply_lora_defaults(full)
    assert full.lora_target_modules is None  # no --use_peft: nothing to target
    default = ModelConfig(model_name_or_path="m", use_peft=True)
    apply_lora_defaults(default)
    assert default.lora_target_modules == LANGUAGE_LORA_TARGET_MODULES
    own = ModelConfig(model_name_or_path="m", use_peft=True, lora_target_modules=["all-linear"])
    apply_lora_defaults(own)
    assert own.lora_target_modules == "all-linear"  # the user's choice (vision tower included) is kept
