"""RARL rewards and zoom metrics against hand-computed values (trl_rarl/rewards.py, trl_rarl/metrics.py)."""

import math
from types import SimpleNamespace

import pytest
from PIL import Image

from ai4va_fg_dataset.core.zoom_tool import ZoomTool
from trl_rarl import rewards as R
from trl_rarl.metrics import zoom_metrics


def call(box, name="image_zoom_in_tool", **extra):
    return {"type": "function", "function": {"name": name, "arguments": {"bbox_2d": box, **extra}}}


def trajectory(*turns):
    """TRL conversational completion: (content, [tool calls]) per assistant turn, tool results between."""
    msgs = []
    for content, calls in turns:
        msg = {"role": "assistant", "content": content}
        if calls:
            msg["tool_calls"] = calls
        msgs.append(msg)
        if calls:
            msgs.append({"role": "tool", "name": "image_zoom_in_tool", "content": "crop"})
    return msgs


GOOD = trajectory(("<think>zoom</think>", [call([0, 0, 10, 10])]), ("<think>ok</think><answer>B</answer>", None))


class FakeEnv:
    """An environment whose tool executed the given boxes (original pixels) on a page of ``size``."""

    def __init__(self, executed, gt, size=(100, 100), rejected=0, tokens=()):
        tool = ZoomTool(Image.new("RGB", size), min_size=1)
        for b in executed:
            assert tool(b).ok
        for _ in range(rejected):
            assert not tool([5, 5, 1, 1]).ok
        self.tool = tool
        self.gt_boxes = [tuple(map(float, g)) for g in gt]
        self.page_size = size
        self.crop_tokens = list(tokens)

    @property
    def calls(self):
        return self.tool.calls


# ------------------------------------------------------------------ format


@pytest.mark.parametrize(
    "completion, mode, expected",
    [
        (GOOD, "tool", 1.0),
        (trajectory(("<think>a</think><answer>A</answer>", None)), "tool", 1.0),  # no zoom is allowed
        (trajectory(("<answer>A</answer>", None)), "tool", 0.0),  # no think
        (trajectory(("zoom", [call([0, 0, 9, 9])]), ("<think>b</think><answer>A</answer>", None)), "tool", 0.0),
        (trajectory(("<think>z</think>", [call([0, 0, 9, 9])])), "tool", 0.0),  # ends on a call: truncated
        (trajectory(("<think>a</think><tool_call>{bad json</tool_call>", None)), "tool", 0.0),
        (trajectory(("<think>z</think>", [call([0, 0, 9, 9], name="zoom")]), ("<think>b</think><answer>A</answer>", None)),
         "tool", 0.0),  # wrong tool name
        (trajectory(("<think>a</think><answer>A</answer><answer>B</answer>", None)), "tool", 0.0),
        ("<think>a</think><answer>A</answer>", "think", 1.0),
        ("<think>a</think>", "think", 0.0),
        ("<answer>A</answer>", "direct", 1.0),
        ("<think>x</think><answer>A</answer>", "direct", 0.0),
    ],
)
def test_format_reward(completion, mode, expected):
    assert R.format_reward([completion], mode=mode) == [expected]


def test_completion_text_reserialises_tool_calls_and_counts_parse_failures():
    turns = R.assistant_turns(GOOD)
    assert turns[0] == '<think>zoom</think><tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 10, 10]}}\n</tool_call>'
    bad = trajectory(("<think>a</think><tool_call>{bad</tool_call>", None))
    assert R.count_parse_failures(bad) == 1 and R.count_parse_failures(GOOD) == 0
    wrong_args = trajectory(("<think>a</think>", [{"type": "function", "function": {"name": "image_zoom_in_tool",
                                                                                  "arguments": {"box": [1, 2, 3, 4]}}}]))
    assert R.count_parse_failures(wrong_args) == 1
    truncated = "<think>a</think><tool_call>{\"name\": \"image_zoom_in_tool\", \"argu"
    assert R.count_parse_failures(truncated) == 1 and R.format_score(truncated) == 0.0


# ---------------------------------------------------------------- accuracy
# The full completion table (metric path = reward path) is tests/test_scoring_table.py; these check the wrapper.


@pytest.mark.parametrize(
    "completion, answer, kind, choices, expected",
    [
        ("<answer>B</answer>", "B", "choice", ["x", "y"], 1.0),
        ("(b)", "B", "choice", ["x", "y"], 1.0),
        ("B. sitting", "B", "choice", ["running", "sitting"], 1.0),
        ("sitting", "B", "choice", ["running", "sitting"], 1.0),  # the option text
        ("The answer is B", "B", "choice", ["x", "y"], 1.0),  # untagged but explicit, as the eval reads it
        ("<answer>a man running</answer>", "A", "choice", ["a woman sitting", "a man running"], 0.0),  # not "A"
        ("A", "B", "choice", ["x", "y"], 0.0),
        ("C", "B", "choice", ["x", "y"], 0.0),  # not an option
        ("", "B", "choice", ["x", "y"], 0.0),
        ("<answer>3</answer>", "3", "number", [], 1.0),
        ("There are 3.0 appearances", "3", "number", [], 1.0),
        ("<answer>4</answer>", "3", "number", [], 0.0),
        ("<answer>three</answer>", "3", "number", [], 1.0),
        ("<answer>A red bike.</answer>", "a red bike", "open", [], 1.0),  # normalised exact match
        ("<answer>A man rides a red bike.</answer>", "a red bike", "open", [], 0.0),  # no substring credit
        ("a blue car", "a red bike", "open", [], 0.0),
    ],
)
def test_accuracy_score(completion, answer, kind, choices, expected):
    assert R.accuracy_score(completion, answer, kind, choices) == expected


def test_accuracy_reward_reads_the_whole_trajectory_and_judge():
    comps = [GOOD, trajectory(("<think>a</think>", None)), "<answer>A</answer>"]
    assert R.accuracy_reward(comps, answer=["B", "B", "A"], answer_type=["choice"] * 3, choices=[["x", "y"]] * 3) == [1.0, 0.0, 1.0]
    # an answer given in an earlier turn counts, as in the eval agent's record (all turns joined)
    early = trajectory(("<think>z</think><answer>B</answer>", [call([0, 0, 9, 9])]), ("<think>done</think>", None))
    assert R.accuracy_reward([early], ["B"], ["choice"], choices=[["x", "y"]]) == [1.0]
    judge = lambda q, ref, pred: "bike" in pred
    assert R.accuracy_reward(["<answer>a bike</answer>", "<answer>car</answer>"], ["x", "x"], ["open", "open"],
                             judge=judge) == [1.0, 0.0]

    def broken(q, ref, pred):
        raise RuntimeError("judge down")

    assert R.accuracy_reward(["<answer>a bike</answer>"], ["x"], ["open"], judge=broken) == [0.0]


def test_accuracy_reward_bad_rows_score_zero_and_are_counted():
    before = R.REWARD_ERRORS["accuracy_reward"]
    assert R.accuracy_reward(["<answer>B</answer>", "<answer>3</answer>"], ["Z", "many"], ["choice", "number"],
                             choices=[["x", "y"], []]) == [0.0, 0.0]
    assert R.REWARD_ERRORS["accuracy_reward"] == before + 2


def test_judge_failures_score_zero_and_are_logged(caplog):
    for bad in (lambda q, r, p: None, lambda q, r, p: float("nan"), lambda q, r, p: 0.7, lambda q, r, p: "yes"):
        assert R.accuracy_reward(["<answer>a bike</answer>"], ["a bike"], ["open"], judge=bad) == [0.0]

    def timeout(q, r, p):
        raise TimeoutError("judge timed out")

    assert R.accuracy_reward(["<answer>a bike</answer>"], ["a bike"], ["open"], judge=timeout) == [0.0]
    assert "LLM judge failed (TimeoutError: judge timed out)" in caplog.text


# -------------------------------------------------------------------- tool


def test_tool_iou_score_hand_computed():
    gt = [(0, 0, 10, 10), (20, 0, 30, 10)]
    assert R.tool_iou_score([], gt) == 0.0  # m = 0
    assert R.tool_iou_score([(0, 0, 10, 10)], []) == 0.0  # no GT
    # m = 1: IoU([0,0,10,5],[0,0,10,10]) = 50/100
    assert R.tool_iou_score([(0, 0, 10, 5)], gt) == pytest.approx(0.5)
    # m = 2, both matched: (1 + 0.5) / sqrt(2)
    assert R.tool_iou_score([(20, 0, 30, 10), (0, 0, 10, 5)], gt) == pytest.approx(1.5 / math.sqrt(2))
    # m = 2 crops of the same region: one-to-one matching, the second matches the far GT box (IoU 0)
    assert R.tool_iou_score([(0, 0, 10, 10), (0, 0, 10, 10)], gt) == pytest.approx(1 / math.sqrt(2))
    # m = 3 with 2 GT boxes: the unmatched crop scores 0 but still counts in 1/sqrt(m)
    assert R.tool_iou_score([(0, 0, 10, 10), (20, 0, 30, 10), (50, 50, 60, 60)], gt) == pytest.approx(2 / math.sqrt(3))
    # a crop far from every GT box
    assert R.tool_iou_score([(50, 50, 60, 60)], gt) == 0.0


def test_grounding_score_threshold():
    gt = [(0, 0, 10, 10)]
    # crop [0,0,20,10] covers the whole GT (coverage 1) with IoU 0.5 -> 0.5
    assert R.grounding_score([(0, 0, 20, 10)], gt, tau=0.9) == pytest.approx(0.5)
    # crop [0,0,10,8]: coverage 0.8 < 0.9 -> 0 although IoU is 0.8
    assert R.grounding_score([(0, 0, 10, 8)], gt, tau=0.9) == 0.0
    assert R.grounding_score([(0, 0, 10, 8)], gt, tau=0.8) == pytest.approx(0.8)


def test_tool_count_and_factor():
    assert R.tool_count_score(1, 1) == 1.0
    assert R.tool_count_score(0, 1) == 0.0
    assert R.tool_count_score(1, 2) == 0.5
    assert R.tool_count_score(3, 2) == 0.5
    assert R.tool_count_score(0, 0) == 1.0 and R.tool_count_score(1, 0) == 0.0
    assert [R.correctness_factor(a, "one_plus") for a in (0.0, 1.0)] == [1.0, 2.0]
    assert [R.correctness_factor(a, "pure") for a in (0.0, 1.0)] == [0.0, 1.0]
    assert [R.correctness_factor(a, "none") for a in (0.0, 1.0)] == [1.0, 1.0]
    with pytest.raises(ValueError, match="conditioning"):
        R.correctness_factor(1.0, "bogus")


def test_tool_rewards_correctness_conditioned_and_warm_start():
    gt = [(0, 0, 10, 10)]
    envs = [FakeEnv([(0, 0, 10, 5)], gt), FakeEnv([(0, 0, 10, 5)], gt), FakeEnv([], gt)]
    wrong = trajectory(("<think>z</think>", [call([0, 0, 10, 5])]), ("<think>k</think><answer>A</answer>", None))
    comps = [GOOD, wrong, trajectory(("<think>k</think><answer>B</answer>", None))]
    kw = {"completions": comps, "environments": envs, "answer": ["B"] * 3, "answer_type": ["choice"] * 3, "choices": [["x", "y"]] * 3}
    full = SimpleNamespace(global_step=5)
    warm = SimpleNamespace(global_step=0)
    # correct with 1 crop: factor 2 x count 1; wrong: factor 1; correct without crop: 2 x 0
    assert R.tool_count_reward(**kw, trainer_state=full, warm_start_steps=1) == [2.0, 1.0, 0.0]
    assert R.tool_iou_reward(**kw, trainer_state=full, warm_start_steps=1) == [pytest.approx(1.0), pytest.approx(0.5), 0.0]
    assert R.tool_count_reward(**kw, trainer_state=warm, warm_start_steps=1) == [1.0, 1.0, 0.0]
    assert R.tool_iou_reward(**kw, trainer_state=full, conditioning="pure") == [pytest.approx(0.5), 0.0, 0.0]
    # grounding: crop [0,0,10,5] covers half of the GT -> 0 at tau 0.9
    assert R.grounding_reward(**kw, trainer_state=full, tau=0.9) == [0.0, 0.0, 0.0]
    # total R for the first trajectory, paper weights: 1 (format) + 1 (acc) + 2 * (1 + 0.5) = 5
    total = sum(f(**kw, trainer_state=full)[0] for f in R.rarl_reward_funcs(SimpleNamespace(
        prompt_mode="tool", tool_reward_conditioning="one_plus", warm_start_steps=0, grounding_tau=0.9)))
    assert total == pytest.approx(5.0)


def test_bad_tool_calls_score_zero_and_never_crash():
    gt = [(0, 0, 10, 10)]
    bad_json = trajectory(("<think>a</think><tool_call>{\"name\": \"image_zoom_in_tool\", \"arguments\": {</tool_call>", None))
    env_none = SimpleNamespace(tool=None, gt_boxes=gt, page_size=(0, 0), crop_tokens=[], calls=[])
    env_rejected = FakeEnv([], gt, rejected=2)
    comps = [bad_json, bad_json]
    kw = {"completions": comps, "environments": [env_none, env_rejected], "answer": ["B", "B"], "answer_type": ["choice"] * 2}
    assert R.format_reward(comps) == [0.0, 0.0]
    assert R.accuracy_reward(comps, ["B", "B"], ["choice"] * 2) == [0.0, 0.0]
    assert R.tool_count_reward(**kw) == [0.0, 0.0]
    assert R.tool_iou_reward(**kw) == [0.0, 0.0]
    stats = zoom_metrics([env_none, env_rejected], comps)
    assert stats["zoom/parse_failures_per_sample"] == (2.0, 2.0)
    assert stats["zoom/rejected_calls_per_sample"] == (2.0, 2.0)
    assert stats["zoom/ok_calls_per_sample"] == (0.0, 2.0)


def test_zoom_metrics_hand_computed():
    gt = [(0, 0, 10, 10), (20, 0, 30, 10)]
    env = FakeEnv([(0, 0, 10, 5), (20, 0, 40, 10)], gt, size=(100, 50), rejected=1, tokens=(4, 6))
    stats = zoom_metrics([env, None], [GOOD, "x"])
    assert stats["zoom/calls_per_sample"] == (3.0, 2.0)
    assert stats["zoom/ok_calls_per_sample"] == (2.0, 2.0)
    assert stats["zoom/iou"] == (pytest.approx(0.5 + 0.5), 2.0)
    assert stats["zoom/iou_first"] == (pytest.approx(0.5), 1.0)
    assert stats["zoom/iou_second"] == (pytest.approx(0.5), 1.0)
    assert stats["zoom/overlap"] == (pytest.approx(0.5 + 1.0), 2.0)
    assert stats["zoom/crop_area_ratio"] == (pytest.approx((50 + 200) / 5000), 2.0)
    assert stats["zoom/crop_visual_tokens"] == (10.0, 2.0)


# -------------------------------------------------------------------- registry


def test_rewards_are_registered_by_name_and_built_in_config_order():
    from trl.trainer.utils import get_callable_name

    from trl_rarl.config import RARLConfig

    assert set(R.RARL_REWARDS) | {"grounding_reward"} <= set(R.REWARD_FUNCS)
    args = RARLConfig("/tmp/unused", use_cpu=True, reward_funcs=["accuracy_reward", "grounding_reward", "format_reward"],
                      reward_weights={"format_reward": 0.2, "accuracy_reward": 0.8}, grounding_tau=0.5)
    funcs = R.rarl_reward_funcs(args)
    # the names TRL logs and the trainer's warm start selects by, in the configured order
    assert [get_callable_name(f) for f in funcs] == ["accuracy_reward", "grounding_reward", "format_reward"]
    assert args.reward_weights == [0.8, 1.0, 0.2]  # TRL's list, in reward_funcs order; a name left out weighs 1
    assert args.reward_weights_by_name == {"accuracy_reward": 0.8, "grounding_reward": 1.0, "format_reward": 0.2}
    assert funcs[1].keywords["tau"] == 0.5 and funcs[2].keywords["mode"] == "tool"
    assert RARLConfig("/tmp/unused", use_cpu=True).reward_weights is None  # TRL: all 1.0
    with pytest.raises(ValueError, match="not in reward_funcs"):
        RARLConfig("/tmp/unused", use_cpu=True, reward_weights={"grounding_reward": 1.0})
    with pytest.raises(ValueError, match="unknown reward"):
        RARLConfig("/tmp/unused", use_cpu=True, reward_funcs=["format_reward", "typo_reward"])
    with pytest.raises(ValueError, match="unknown reward"):
        R.make_reward_funcs(["typo_reward"], args)


def test_register_reward_adds_a_named_reward():
    def length_penalty(completions, **kwargs):
        return [-0.01 * len(R.completion_text(c)) for c in completions]

    try:
        R.register_reward(length_penalty)
        (fn,) = R.make_reward_funcs(["length_penalty"], SimpleNamespace())
        assert fn(completions=["abcd"]) == [pytest.approx(-0.04)]
        with pytest.raises(ValueError, match="needs a __name__"):
            R.register_reward(lambda completions, **kw: [0.0] * len(completions))  # no usable name
    finally:
        R.REWARD_FUNCS.pop("length_penalty", None)

    def format_reward(completions, **kwargs):  # another function under a taken name
        return [0.0] * len(completions)

    with pytest.raises(ValueError, match="already registered"):
        R.register_reward(format_reward)
