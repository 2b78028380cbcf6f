"""The tool-call parser cannot raise or stall, and every consumer reaches the same verdict.

Issue "Nothing lost, nothing stale, nothing raised", part 4: hostile completions (huge or
non-finite coordinates, deep nesting, thousands of unclosed tags, string boxes) must give a
malformed call and a zero reward, never an exception, a stall or a crop. Property-based tests
(hypothesis, modest example counts, no example database written) over random and adversarial
completions and tool arguments; a subprocess timing check for linear time.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ai4va_fg_dataset.core import tool_calls as Z
from ai4va_fg_dataset.core.zoom_tool import ToolCall, ToolCallError, ZoomTool, parse_tool_calls
from trl_rarl import rewards as R
from trl_rarl.environment import ZoomEnvironment
from trl_rarl.metrics import zoom_metrics

PROPS = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _block(args, name=Z.TOOL_NAME) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": args})}\n</tool_call>'


def _zoom_text(box_json: str) -> str:
    return ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": ' + box_json
            + "}}</tool_call>")


def _conv(args, name=Z.TOOL_NAME):
    """A TRL conversational completion: think + one tool call with ``args``, the tool result, an answer."""
    call = {"type": "function", "function": {"name": name, "arguments": args}}
    return [{"role": "assistant", "content": "<think>zoom</think>", "tool_calls": [call]},
            {"role": "tool", "name": Z.TOOL_NAME, "content": "crop"},
            {"role": "assistant", "content": "<think>ok</think><answer>B</answer>"}]


class _Frame:
    """The model sees the page at its own size (no transformers import for Qwen's resize)."""

    def resized(self, width, height):
        return (width, height)

    def visual_tokens(self, width, height):
        return 1


def _env(size=(100, 80)) -> ZoomEnvironment:
    env = ZoomEnvironment(_Frame(), max_calls=None)
    env.reset(image=Image.new("RGB", size), bboxes=[[0, 0, 40, 40]])
    return env


def _rewards(completions, envs) -> list[float]:
    kw = {"completions": completions, "environments": envs, "answer": ["B"] * len(completions),
          "answer_type": ["choice"] * len(completions), "choices": [["x", "y"]] * len(completions)}
    out = R.format_reward(completions) + R.accuracy_reward(completions, kw["answer"], kw["answer_type"])
    out += R.tool_count_reward(**kw) + R.tool_iou_reward(**kw) + R.grounding_reward(**kw, tau=0.5)
    return out


def _check_calls(calls):
    assert isinstance(calls, list) and len(calls) <= Z.MAX_CALLS_PER_TEXT + 1
    for c in calls:
        assert isinstance(c, (ToolCall, ToolCallError))
        if isinstance(c, ToolCall):
            assert len(c.bbox_2d) == 4
            assert all(isinstance(v, float) and math.isfinite(v) and abs(v) <= Z.MAX_COORDINATE for v in c.bbox_2d)
        else:
            assert isinstance(c.reason, str) and c.reason and len(c.raw) <= 400


# --------------------------------------------------------------------------- the issue's cases

HUGE_309 = "9" * 309  # float(int) overflows: OverflowError before the fix
HUGE_5000 = "1" + "0" * 4999  # int() refuses > 4300 digits: ValueError before the fix
NESTED = "<tool_call>" + "[" * 1000 + "]" * 1000 + "</tool_call>"  # RecursionError before the fix


@pytest.mark.parametrize("text, reason", [
    (_zoom_text(f"[0, 0, {HUGE_309}, 40]"), "out of range"),
    (_zoom_text(f"[0, 0, {HUGE_309}.5, 40]"), "out of range"),
    (_zoom_text(f"[0, 0, {HUGE_5000}, 40]"), "characters (limit"),
    (_zoom_text(f"[0, 0, {'1' * 3000}, 40]"), "out of range"),  # under the block limit, over int()'s comfort
    (NESTED, "nested 1000 levels"),
    (_zoom_text("[0, 0, 1e400, 40]"), "non-finite"),
    (_zoom_text("[0, 0, NaN, 40]"), "non-finite"),
    (_zoom_text("[0, 0, -Infinity, 40]"), "non-finite"),
    (_zoom_text("[0, 0, 2000000, 40]"), "out of range"),
    (_zoom_text('"1289"'), "not a list of 4 numbers"),
    (_zoom_text('"[0, 0, 10, 10]"'), "not a list of 4 numbers"),
    (_zoom_text('{"x1": 0}'), "not a list of 4 numbers"),
])
def test_issue_completions_are_malformed_calls_not_exceptions(text, reason):
    calls = parse_tool_calls(text)
    assert len(calls) == 1 and isinstance(calls[0], ToolCallError), calls
    assert reason in calls[0].reason
    completion = "<think>a</think>" + text
    assert R.format_reward([completion]) == [0.0]
    assert R.count_parse_failures(completion) == 1
    conv = [{"role": "assistant", "content": completion}, {"role": "assistant", "content": "<answer>B</answer>"}]
    assert R.format_reward([conv]) == [0.0]


@pytest.mark.parametrize("box", [[0, 0, 10**400, 40], [0, 0, 10**5000, 40], [0, 0, -(10**309), 40],
                                 [0, 0, 1e300, 40], [0, 0, float("inf"), 40]])
def test_zoom_tool_rejects_absurd_coordinates(box):
    tool = ZoomTool(Image.new("RGB", (100, 100)))
    res = tool(box)
    assert not res.ok and res.record.malformed and res.image is None
    assert "out of range" in res.error or "non-finite" in res.error
    assert tool.num_malformed == 1 and tool.executed_boxes == []


def test_string_box_is_malformed_everywhere_and_earns_no_tool_reward():
    """``image_zoom_in_tool("1289")`` cropped [0,0,28,28] and earned tool rewards before the fix."""
    # the zoom tool
    tool = ZoomTool(Image.new("RGB", (100, 100)))
    res = tool("1289")
    assert not res.ok and res.image is None and tool.executed_boxes == []
    expected = Z.validate_arguments({"bbox_2d": "1289"})
    assert isinstance(expected, ToolCallError) and "not a list of 4 numbers" in expected.reason
    assert res.record.malformed and res.error == expected.reason
    # the environment (TRL calls its public method with the parsed arguments)
    env = _env()
    reply = env.image_zoom_in_tool("1289")
    assert reply == f"Error: {expected.reason}" and env.num_malformed == 1 and env.tool.executed_boxes == []
    # the parser the rewards and the eval agent use
    parsed = parse_tool_calls(_block({"bbox_2d": "1289"}))
    assert parsed == [ToolCallError(expected.reason, parsed[0].raw)]
    # format and tool rewards: zero, and the call counts as a parse failure
    completion = _conv({"bbox_2d": "1289"})
    assert R.format_reward([completion]) == [0.0]
    kw = {"completions": [completion], "environments": [env], "answer": ["B"], "answer_type": ["choice"],
          "choices": [["x", "y"]]}
    assert R.tool_count_reward(**kw) == [0.0] and R.tool_iou_reward(**kw) == [0.0]
    stats = zoom_metrics([env], [completion])
    assert stats["zoom/parse_failures_per_sample"] == (1.0, 1.0)
    assert stats["zoom/rejected_calls_per_sample"] == (1.0, 1.0)


def test_eval_agent_step_uses_the_same_verdict():
    from lmms_eval_tasks.models.zoom_agent import ZoomAgent, _Conversation

    agent = object.__new__(ZoomAgent)  # _step needs only max_turns
    agent.max_turns = 5
    for text in (_zoom_text(f"[0, 0, {HUGE_5000}, 40]"), _zoom_text('"1289"'), NESTED,
                 "<think>x</think>" + "<tool_call>" * 50_000):
        tool = ZoomTool(Image.new("RGB", (100, 100)), max_calls=8)
        conv = _Conversation(messages=[], images=[], tool=tool)
        agent._step(conv, text, 0)
        assert conv.trajectory.tool_calls == 1 and len(conv.trajectory.tool_errors) == 1
        assert tool.executed_boxes == [] and [c.malformed for c in tool.calls] == [True]


def test_unserialisable_trl_arguments_are_malformed():
    class Weird:
        pass

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    for args in ({"bbox_2d": [0, 0, 10**5000, 4]}, {"bbox_2d": deep}, {"bbox_2d": Weird()}, "not a dict"):
        completion = _conv(args)
        assert R.format_reward([completion]) == [0.0]
        assert R.count_parse_failures(completion) == 1
    junk = [{"role": "assistant", "content": 5, "tool_calls": 7}, {"role": "assistant", "content": [{"text": 3}]}]
    assert R.format_reward([junk]) == [0.0]


def test_too_many_and_too_long():
    many = "<think>a</think>" + _block({"bbox_2d": [0, 0, 5, 5]}) * (Z.MAX_CALLS_PER_TEXT + 10)
    calls = parse_tool_calls(many)
    assert len(calls) == Z.MAX_CALLS_PER_TEXT + 1 and "more than" in calls[-1].reason
    assert all(isinstance(c, ToolCall) for c in calls[:-1])
    huge = "x" * (Z.MAX_COMPLETION_CHARS + 1)
    assert "limit" in parse_tool_calls(huge)[0].reason and len(parse_tool_calls(huge)) == 1
    label = parse_tool_calls(_block({"bbox_2d": [0, 0, 5, 5], "label": "y" * (Z.MAX_LABEL_CHARS + 1)}))
    assert "label" in label[0].reason


def test_judge_nan_is_not_correct():
    """min(1, nan) is 1: a judge returning NaN scored the answer correct before the fix."""
    nan_judge = lambda q, ref, pred: float("nan")
    assert R.accuracy_reward(["<answer>x</answer>"], ["y"], ["open"], judge=nan_judge) == [0.0]


def test_rarl_llm_judge_accepts_only_well_formed_verdicts():
    """Training judges with the evaluation's judge (core.llm.Judge): only a JSON verdict counts."""
    from ai4va_fg_dataset.core.llm import JudgeError

    class Client:
        def __init__(self, reply):
            self.reply = reply

        def generate(self, prompt, images):
            return self.reply

    for reply, score in (('{"correct": true}', 1.0), (' {"correct": false}\n', 0.0), ('```json\n{"correct": true}\n```', 1.0)):
        assert R.make_llm_judge(Client(reply))("q", "r", "p") == score
    for reply in ("yes", "Yesterday I saw it", '{"incorrect": true}', "", None, '{"correct": "true"}'):
        with pytest.raises(JudgeError):
            R.make_llm_judge(Client(reply))("q", "r", "p")
        assert R.accuracy_reward(["<answer>p</answer>"], ["r"], ["open"], judge=R.make_llm_judge(Client(reply))) == [0.0]


# --------------------------------------------------------------------------------- properties

_FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>", "{", "}", "[", "]", '"', ":",
    ",", "\\", " ", "\n", '"name"', '"arguments"', '"bbox_2d"', '"label"', f'"{Z.TOOL_NAME}"', "0", "12", "-3.5",
    "1e999", "NaN", "Infinity", "true", "null", HUGE_309, "9" * 60, '"1289"', "[0, 0, 10, 10]",
    '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}', "[" * 50, "]" * 50, "B",
]
_COMPLETIONS = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=20)), max_size=60).map("".join)


@PROPS
@given(text=_COMPLETIONS)
def test_parser_and_rewards_never_raise_on_random_completions(text):
    calls = parse_tool_calls(text)
    _check_calls(calls)
    tool = ZoomTool(Image.new("RGB", (64, 48)), max_calls=8)
    for c in calls:
        res = tool.execute(c)
        assert res.ok == (res.image is not None)
        if isinstance(c, ToolCallError):
            assert not res.ok and res.record.malformed
    env = SimpleNamespace(tool=tool, gt_boxes=[(0.0, 0.0, 10.0, 10.0)], page_size=(64, 48), crop_tokens=[],
                          calls=tool.calls)
    conv = [{"role": "assistant", "content": text}, {"role": "tool", "content": "x"},
            {"role": "assistant", "content": text}]
    scores = _rewards([text, conv], [env, env])
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert R.format_score(text) in (0.0, 1.0) and R.format_score(text, "think") in (0.0, 1.0)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**100), max_value=10**100),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.integers(min_value=-2_000_000, max_value=2_000_000),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, 10**39, 10**41]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner,
                                                                                                 max_size=3), max_leaves=12)
_BOXES = st.one_of(
    _VALUES,
    st.lists(st.one_of(st.integers(-5, 300), st.floats(-10, 300)), min_size=4, max_size=4),
    st.lists(_SCALARS, min_size=4, max_size=4),
)
_CATEGORIES = ("not a list of 4 numbers", "non-finite", "out of range", "label", "not a string")


def _category(reason: str) -> str:
    return next((c for c in _CATEGORIES if c in reason), reason)


@PROPS
@given(box=_BOXES, label=st.one_of(st.none(), st.text(max_size=10), st.integers(0, 3)))
def test_one_verdict_for_parser_tool_environment_and_rewards(box, label):
    """Random ``bbox_2d``/``label`` values: the parser (format reward, eval agent), the zoom tool and the
    environment agree on malformed vs well-formed, for the same reason category."""
    args = {"bbox_2d": box} if label is None else {"bbox_2d": box, "label": label}
    direct = Z.validate_arguments(args)
    parsed = parse_tool_calls(_block(args))
    _check_calls(parsed)
    assert len(parsed) == 1
    assert isinstance(parsed[0], ToolCallError) == isinstance(direct, ToolCallError)
    tool = ZoomTool(Image.new("RGB", (100, 80)))
    res = tool(box, label)
    env = _env()
    reply = env.image_zoom_in_tool(box, label)
    assert res.record.malformed == isinstance(direct, ToolCallError) == (env.num_malformed == 1)
    if isinstance(direct, ToolCallError):
        assert _category(parsed[0].reason) == _category(direct.reason) == _category(res.error)
        assert not res.ok and reply == f"Error: {direct.reason}"
    else:
        assert parsed[0].bbox_2d == direct.bbox_2d == res.record.requested
    completion = _conv(args)
    fmt = R.format_reward([completion])[0]
    assert fmt == (0.0 if isinstance(direct, ToolCallError) else 1.0)
    scores = _rewards([completion], [env])
    assert all(math.isfinite(s) for s in scores)
    if isinstance(direct, ToolCallError):  # no crop, so no tool reward beyond the count of zero crops
        assert R.tool_iou_reward(completions=[completion], environments=[env], answer=["B"],
                                 answer_type=["choice"], choices=[["x", "y"]]) == [0.0]


# ------------------------------------------------------------------------------- linear time

_TIMING = textwrap.dedent("""
    import json, sys, time
    from trl_rarl import rewards as R
    from ai4va_fg_dataset.core.tool_calls import parse_tool_calls
    patterns = {
        "unclosed tool_call": "<tool_call>",
        "unclosed answer": "<answer>",
        "closed calls": '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}</tool_call>',
        "mixed tags": "<think><tool_call></think></tool_call><answer>",
        "open brackets in a call": None,
        "think text": None,
    }
    def run(text):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            parse_tool_calls(text)
            R.format_reward([text]); R.format_reward([text], mode="think"); R.count_parse_failures(text)
            R.accuracy_reward([text], ["A"], ["choice"], choices=[["x", "y"]])
            best = min(best, time.perf_counter() - t)
        return best
    out = {}
    for name, unit in patterns.items():
        times = []
        for size in (100_000, 1_000_000):
            if name == "open brackets in a call":
                text = "<think>a</think><tool_call>" + "[" * size + "</tool_call>"
            elif name == "think text":
                text = "<think>" + "a" * size + "</think><answer>" + "<" * 10 + "</answer>"
            else:
                text = unit * (size // len(unit))
            times.append(run(text))
        out[name] = times
    print(json.dumps(out))
""")


def test_parsing_and_rewards_are_linear_in_completion_length():
    """1 MB of hostile completion costs about 10x 100 kB (quadratic would be 100x). Before the fix the
    unclosed-tag patterns took 20 s at 0.22 MB and minutes at 1 MB: the subprocess timeout fails it."""
    try:
        proc = subprocess.run([sys.executable, "-c", _TIMING], capture_output=True, text=True, timeout=90,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("parsing 1 MB of hostile completion did not finish in 90 s (quadratic or worse)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (small, big) in times.items():
        # linear: ~10x; the slack absorbs timer noise on a shared CI machine
        assert big <= 30 * small + 0.5, f"{name}: {small:.4f}s at 100 kB, {big:.4f}s at 1 MB"
        assert big < 10, f"{name}: {big:.1f}s at 1 MB"


@PROPS
@given(text=st.lists(st.sampled_from(["<answer>", "</answer>", "a", "B", "<", ">", "\n", "answer"]), max_size=40)
       .map("".join))
def test_linear_answer_extraction_matches_the_regex_it_replaces(text):
    import re

    from ai4va_fg_dataset.core.scoring import answer_span
    from ai4va_fg_dataset.core.tags import tag_contents

    expected = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    assert tag_contents(text, "answer") == expected
    if expected:  # the scorer the accuracy reward calls reads the last closed answer
        assert answer_span(R.completion_text(text)) == (expected[-1].strip(), True)
