"""Eval scoring cannot stall on hostile model output, and a bad judge setting stops ``ai4va-fg eval``
before a model loads (issue "nothing raised, nothing stalls under hostile input").

* Answer extraction (:mod:`ai4va_fg_dataset.core.scoring`) finds ``<think>``, ``<tool_call>`` /
  ``<tool_response>`` and ``<answer>`` blocks with :func:`ai4va_fg_dataset.core.tags.tag_blocks`, one forward
  scan; the regexes it replaced rescanned from every unclosed tag (13 s for 100 kB of ``<answer>``).
  A subprocess timing check for linear time, and a hypothesis property that the results are the
  old regexes' (kept below as the reference).
* ``AI4VA_FG_JUDGE_*`` settings (also from a ``--config`` file's ``env:`` block) are validated before
  lmms-eval starts when a Panel Understanding task is asked for: exit 2, one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai4va_fg_dataset.core import scoring as answers
from ai4va_fg_dataset.core.tags import tag_blocks, tag_contents
from lmms_eval_tasks import run_eval

ROOT = Path(__file__).resolve().parents[1]
PROPS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ the regexes answers.py used to run

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>.*\Z", re.DOTALL | re.IGNORECASE)
_TOOL_BLOCKS = re.compile(r"<(tool_call|tool_response)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>(.*)\Z", re.DOTALL | re.IGNORECASE)


def _old_strip_reasoning(text: str) -> str:
    text = _THINK.sub(" ", text)
    text = _TOOL_BLOCKS.sub(" ", text)
    return _THINK_OPEN.sub(" ", text)


def _old_answer_span(text) -> tuple[str, bool]:
    if not isinstance(text, str):
        return "", False
    cleaned = _old_strip_reasoning(text)
    tags = _ANSWER.findall(cleaned)
    if tags:
        return tags[-1].strip(), True
    open_tag = _ANSWER_OPEN.search(cleaned)
    if open_tag:
        return open_tag.group(1).strip(), True
    return cleaned.strip(), False


# Tag fragments in several spellings (Python re's case rules: "ſ" matches "s", "K" (Kelvin) "k",
# "İ" and "ı" match "i"; a backreference compares lower-case forms), partial tags, letters, words.
_FRAGMENTS = [
    "<think>", "</think>", "<THINK>", "</Think>", "<thinK>", "</thİnk>", "<thınk>",
    "<tool_call>", "</tool_call>", "<TOOL_CALL>", "</Tool_Call>",
    "<tool_response>", "</tool_response>", "<Tool_Response>", "<tool_reſponse>", "</TOOL_REſPONSE>",
    "<answer>", "</answer>", "<ANSWER>", "</Answer>", "<anſwer>",
    "<", ">", "/", "</", "<answer", "tool_call>", "think", "answer",
    "A", "B", "C", "a", "x", "3", " ", "\n", "(B)", "B.", "two",
]
_TEXTS = st.lists(st.sampled_from(_FRAGMENTS), max_size=24).map("".join)
_CHOICES = ["a running man", "a sitting man", "x", "two dogs"]


@PROPS
@given(text=_TEXTS)
def test_answer_extraction_equals_the_regexes_it_replaces(text):
    assert answers.strip_reasoning(text) == _old_strip_reasoning(text)
    assert answers.answer_span(text) == _old_answer_span(text)
    # The rest of the extraction reads that span with unchanged code: the same answers.
    span, _ = _old_answer_span(text)
    assert answers.extract_open(text) == (span or None)


@PROPS
@given(text=_TEXTS, name=st.sampled_from(["answer", "think", "tool_call"]), ignore_case=st.booleans())
def test_tag_blocks_equal_re_finditer(text, name, ignore_case):
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    expected = [(m.start(), m.start(1), m.end(1), m.end())
                for m in re.finditer(rf"<{name}>(.*?)</{name}>", text, flags)]
    assert [b[1:] for b in tag_blocks(text, name, ignore_case=ignore_case)] == expected
    assert tag_contents(text, name, ignore_case=ignore_case) == [text[s:e] for _, s, e, _ in expected]
    pair = re.compile(r"<(tool_call|tool_response)>.*?</\1>", flags)
    assert [(b.start, b.end) for b in tag_blocks(text, ("tool_call", "tool_response"), ignore_case=ignore_case,
                                                  same_spelling=True)] == [m.span() for m in pair.finditer(text)]


def test_answer_extraction_examples_and_bad_input():
    hostile = "<answer>" * 1000
    assert answers.answer_span(hostile) == (hostile[len("<answer>"):], True)
    assert answers.extract_choice("<tool_call>" * 1000 + "<answer>B</answer>", _CHOICES) == "B"
    assert answers.extract_choice("<THINK>A?</think><Tool_Call>{}</tool_call><ANSWER>(C)</Answer>", _CHOICES) == "C"
    assert answers.extract_number("<think>" * 50 + "</think> <answer>three</answer>") == 3
    assert answers.answer_span(None) == ("", False) and tag_blocks(None, "answer") == []
    with pytest.raises(ValueError, match="tag names"):
        tag_blocks("x", ["an/swer"])


# -------------------------------------------------------------------------------------- linear time

_TIMING = textwrap.dedent("""
    import json, time
    from ai4va_fg_dataset.core import scoring as answers
    CHOICES = ["a running man", "a sitting man", "x", "two dogs"]
    patterns = {
        "unclosed answer": "<answer>",
        "unclosed ANSWER": "<ANSWER>",
        "unclosed think": "<think>",
        "unclosed tool_call": "<tool_call>",
        "unclosed tool_response": "<Tool_Response>",
        "mixed tags": "<think><tool_call></think></tool_call><answer>",
        "closed blocks": "<tool_call>x</tool_call><answer>B</answer>",
    }
    def best(fn, text):
        times = []
        for _ in range(2):
            t = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - t)
        return min(times)
    out = {}
    for name, unit in patterns.items():
        small, big = (unit * (size // len(unit)) for size in (100_000, 1_000_000))
        t = time.perf_counter()
        answers.extract_choice(big, CHOICES), answers.extract_number(big), answers.extract_open(big)
        whole = time.perf_counter() - t
        out[name] = [best(answers.answer_span, small), best(answers.answer_span, big), whole]
    print(json.dumps(out))
""")


def test_answer_extraction_is_linear_in_completion_length():
    """1 MB of hostile output costs about 10x 100 kB (quadratic would be 100x). Before the fix 100 kB of
    ``<answer>`` took 13 s and 1 MB would take over 20 minutes: the subprocess timeout fails it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", _TIMING], capture_output=True, text=True, timeout=90,
                              check=False, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("reading answers from 1 MB of hostile output did not finish in 90 s (quadratic or worse)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (small, big, whole) in times.items():
        # linear: ~10x; the slack absorbs timer noise on a shared CI machine
        assert big <= 30 * small + 0.5, f"{name}: answer_span {small:.4f}s at 100 kB, {big:.4f}s at 1 MB"
        assert big < 5, f"{name}: answer_span {big:.1f}s at 1 MB"
        assert whole < 15, f"{name}: extract_choice/number/open {whole:.1f}s at 1 MB"


# --------------------------------------------------------------- judge settings checked before lmms-eval

_JUDGE_VARS = ("PROVIDER", "MODEL", "BASE_URL", "API_KEY", "CACHE", "MAX_RETRIES", "BACKOFF", "TIMEOUT")
HUB = "someone/ai4va-fg"  # a Hub id: the overlay has every task, nothing is downloaded before lmms-eval


@pytest.fixture
def no_lmms_eval(monkeypatch):
    """``run_eval.main`` without lmms-eval: records the runs it would have started (a model would load)."""
    for var in _JUDGE_VARS:
        monkeypatch.delenv(f"AI4VA_FG_JUDGE_{var}", raising=False)
    runs: list[list[str]] = []

    def fake_run(lmms_args, overlay, dataset):
        runs.append(lmms_args)
        return [], 0

    monkeypatch.setattr(run_eval, "run_lmms_eval", fake_run)
    return runs


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_judge_timeout_exits_2_before_lmms_eval_starts(tmp_path):
    """Through ``python -m lmms_eval_tasks.run_eval``: one line, exit 2, and lmms-eval never imported (no model)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI4VA_FG_JUDGE_")}
    env.update(AI4VA_FG_JUDGE_TIMEOUT="nan", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    code = ("import sys\nfrom lmms_eval_tasks import run_eval\nrc = run_eval.main(sys.argv[1:])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('lmms_eval', 'transformers', 'torch')))")
    args = ["--dataset", HUB, "--overlay", str(tmp_path / "overlay"), "--model", "qwen2_5_vl",
            "--model_args", f"pretrained={tmp_path / 'no_model'}", "--tasks", "ai4va_fg"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env, cwd=tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "2 []", proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "ai4va-fg eval: error: bad judge setting: AI4VA_FG_JUDGE_TIMEOUT=nan must be a finite number > 0 (the LLM "
        "judge scores ai4va_fg_panel_understanding; see lmms_eval_tasks/judge.py for the AI4VA_FG_JUDGE_* variables)")
    # The module entry point itself exits 2 too.
    proc = subprocess.run([sys.executable, "-m", "lmms_eval_tasks.run_eval", *args], capture_output=True, text=True,
                          timeout=120, check=False, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "AI4VA_FG_JUDGE_TIMEOUT=nan" in proc.stderr


def test_bad_judge_setting_from_a_config_env_block(tmp_path, capsys, no_lmms_eval, monkeypatch):
    """The ``env:`` block of a ``--config`` entry counts (lmms-eval applies every entry's block, ``$VAR``
    expanded, before the first run), and the line names the config file; tasks through a group."""
    cfg = tmp_path / "eval.yaml"
    entries = [{"model": "qwen2_5_vl", "tasks": "ai4va_fg_dialog_reordering", "env": {"AI4VA_FG_JUDGE_MODEL": "m"}},
               {"model": "qwen2_5_vl", "tasks": "ai4va_fg_think", "env": {"AI4VA_FG_JUDGE_MAX_RETRIES": "${RETRIES}"}}]
    cfg.write_text(yaml.safe_dump(entries))
    monkeypatch.setenv("RETRIES", "-2")
    argv = ["--dataset", HUB, "--overlay", str(tmp_path / "overlay"), "--config", str(cfg)]
    assert run_eval.main(argv) == 2
    assert _error_line(capsys) == (
        "ai4va-fg eval: error: bad judge setting: AI4VA_FG_JUDGE_MAX_RETRIES=-2 must be an integer >= 0 and <= 100 "
        f"(the LLM judge scores ai4va_fg_panel_understanding_think, set in the env: block of --config {cfg}; see "
        "lmms_eval_tasks/judge.py for the AI4VA_FG_JUDGE_* variables)")
    # --tasks on the command line replaces the config's tasks, but the env blocks still apply.
    entries[1]["env"] = {"AI4VA_FG_JUDGE_PROVIDER": "claude"}
    cfg.write_text(yaml.safe_dump(entries))
    assert run_eval.main([*argv, "--tasks", "ai4va_fg_panel_understanding_t*"]) == 2
    line = _error_line(capsys)
    assert line.startswith("ai4va-fg eval: error: bad judge setting: AI4VA_FG_JUDGE_PROVIDER='claude' is not one of "
                           "openai, gemini (the LLM judge scores ai4va_fg_panel_understanding_think, "
                           "ai4va_fg_panel_understanding_tool, set in the env: block of --config ")
    entries[1]["env"] = ["AI4VA_FG_JUDGE_TIMEOUT=1"]
    cfg.write_text(yaml.safe_dump(entries))
    assert run_eval.main(argv) == 2
    assert "'env' must be a mapping of variable names to values, got list" in _error_line(capsys)
    assert no_lmms_eval == []


def test_judge_settings_checked_only_when_panel_understanding_runs(tmp_path, capsys, no_lmms_eval, monkeypatch):
    """No Panel Understanding task asked for, or none in the build: the judge is never built, no check."""
    monkeypatch.setenv("AI4VA_FG_JUDGE_TIMEOUT", "nan")
    overlay = ["--overlay", str(tmp_path / "overlay")]
    assert run_eval.main(["--dataset", HUB, *overlay, "--tasks", "ai4va_fg_action_recognition"]) == 0
    data = tmp_path / "data"  # a build with the dialog reordering task only
    data.mkdir()
    (data / "README.md").write_text("---\nconfigs:\n- config_name: dialog_reordering\n  data_files:\n  - split: test\n"
                                    "    path: [dialog_reordering/test-00000-of-00001.parquet]\n---\n")
    assert run_eval.main(["--dataset", str(data), *overlay, "--tasks", "ai4va_fg"]) == 0
    assert len(no_lmms_eval) == 2
    # Good settings pass.
    monkeypatch.setenv("AI4VA_FG_JUDGE_TIMEOUT", "30")
    assert run_eval.main(["--dataset", HUB, *overlay, "--tasks", "ai4va_fg"]) == 0
    assert len(no_lmms_eval) == 3
    capsys.readouterr()
