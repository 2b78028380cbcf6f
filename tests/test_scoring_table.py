"""The reward a model is trained on is the metric it is evaluated on (issue 10, "One scorer").

One table of real-looking completions per answer type (choice, number, open without a judge, open
with a fake judge), each with the score it must get, goes through

* the **metric path**: the ``process_results`` function the lmms-eval task YAMLs name (resolved from
  the YAML's ``!function`` tag and loaded by file path, as lmms-eval does), called with a dataset row
  dict and the model output (plain text, or the zoom agent's trajectory record for multi-turn rows);
* the **reward path**: the ``accuracy_reward`` that ``RARLTrainer`` hands to ``GRPOTrainer``
  (``trl_rarl.rewards.rarl_reward_funcs(RARLConfig)``), called the way ``GRPOTrainer._calculate_rewards``
  calls ``reward_funcs``: ``prompts``, conversational ``completions`` (lists of messages, tool calls
  parsed), ``completion_ids`` and every dataset column as keyword arguments, plus ``trainer_state``,
  ``log_extra`` and ``log_metric``;

and both must give the expected score. The table holds the cases the issue measured ("The answer is B",
"sitting down", "three", "3.0", "a man running" vs option A), the recipes' SFT-R filter calls the same
scorer (checked on the same table).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ai4va_fg_dataset.core.scoring import normalize_open, score_answer
from lmms_eval_tasks import scoring as eval_scoring
from lmms_eval_tasks.trajectory import Trajectory

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "lmms_eval_tasks" / "ai4va_fg"
sys.path.insert(0, str(REPO))  # recipes/ is not a package

ACTION = ["sitting down", "running", "jumping over a fence", "sleeping"]
PEOPLE = ["a woman sitting", "a man running", "a dog barking", "a car"]
NO_MAN = ["sitting down", "standing up", "waving", "crying"]
YES_NO = ["yes", "no"]
CALL = '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 300, 400]}}\n</tool_call>'

# (completion, choices, key, expected score). A completion that is a tuple of strings is a multi-turn
# trajectory: the assistant turns, a zoom call at the end of every turn but the last.
CHOICE_CASES = [
    ("<answer>B</answer>", ACTION, "B", 1.0),
    ("B", ACTION, "B", 1.0),
    ("(B)", ACTION, "B", 1.0),
    ("B.", ACTION, "B", 1.0),
    ("b", ACTION, "B", 1.0),
    ("<answer>(b)</answer>", ACTION, "B", 1.0),
    ("The answer is B", ACTION, "B", 1.0),  # issue: reward 0, eval 1 before
    ("The answer is B.", ACTION, "A", 0.0),
    ("Answer: C", ACTION, "C", 1.0),
    ("Answer: (A)", ACTION, "A", 1.0),
    ("Option B", ACTION, "B", 1.0),
    ("The correct option is (D).", ACTION, "D", 1.0),
    ("<think>It could be A, but the legs are moving.</think><answer>B</answer>", ACTION, "B", 1.0),
    ("<think>Legs apart, dust behind.</think>\n<answer>B. running</answer>", ACTION, "B", 1.0),
    ("B) running", ACTION, "B", 1.0),
    ("sitting down", ACTION, "A", 1.0),  # issue: the text of a choice, reward 0 / eval 1 before
    ("<answer>Sitting down.</answer>", ACTION, "A", 1.0),
    ("<answer>sitting down</answer>", ACTION, "B", 0.0),
    ("<answer>He is sleeping.</answer>", ACTION, "D", 1.0),
    ("I think the character is jumping over a fence.", ACTION, "C", 1.0),
    ("The man is running, so that is my answer.", ACTION, "B", 1.0),
    ("a man running", NO_MAN, "A", 0.0),  # issue: training read the article as option A
    ("<answer>A man running</answer>", NO_MAN, "A", 0.0),
    ("A man runs", NO_MAN, "A", 0.0),
    ("<answer>a man running</answer>", PEOPLE, "B", 1.0),  # ... and it is option B's text here
    ("<answer>a man running</answer>", PEOPLE, "A", 0.0),
    ("<answer>E</answer>", ACTION, "A", 0.0),  # not one of the 4 letters
    ("E", ACTION, "A", 0.0),
    ("", ACTION, "A", 0.0),
    ("<think>B</think>", ACTION, "B", 0.0),  # reasoning only
    ("<answer>A</answer> wait <answer>C</answer>", ACTION, "C", 1.0),  # the last answer wins
    ("<answer>C", ACTION, "C", 1.0),  # truncated closing tag
    ("<ANSWER>D</ANSWER>", ACTION, "D", 1.0),
    ("<answer>B is correct</answer>", ACTION, "B", 1.0),
    ("<answer>**B**</answer>", ACTION, "B", 1.0),
    (CALL + "<answer>A</answer>", ACTION, "A", 1.0),
    ("<answer>running or sleeping</answer>", ACTION, "B", 0.0),  # two options: no answer
    ("<answer>I cannot tell.</answer>", ACTION, "A", 0.0),
    ("\n\nC\n", ACTION, "C", 1.0),
    ("<answer>A</answer>", YES_NO, "A", 1.0),
    ("<answer>no</answer>", YES_NO, "B", 1.0),
    ("<answer>C</answer>", YES_NO, "A", 0.0),  # C is not an option of a yes/no question
    (("<think>zoom on the hero</think>", "<think>he runs</think><answer>B</answer>"), ACTION, "B", 1.0),
    (("<think>zoom</think>", "<think>first panel</think>", "<think>ok</think><answer>C</answer>"), ACTION, "B", 0.0),
    (("<think>zoom</think>", "<think>cannot see</think>"), ACTION, "B", 0.0),  # no answer in any turn
    (("<think>zoom</think>", "<think>the legs</think>The answer is B"), ACTION, "B", 1.0),
]

NUMBER_CASES = [
    ("<answer>3</answer>", "3", 1.0),
    ("3", "3", 1.0),
    ("three", "3", 1.0),  # issue: reward 0, eval 1 before
    ("<answer>three</answer>", "3", 1.0),
    ("3.0", "3", 1.0),  # issue: reward 1, eval 0 before
    ("<answer>3.0</answer>", "3", 1.0),
    ("<answer>4.00</answer>", "4", 1.0),
    ("<answer>2.5</answer>", "3", 0.0),
    ("<answer>1.5</answer>", "1", 0.0),
    ("<answer>3 times</answer>", "3", 1.0),
    ("He appears 4 times", "4", 1.0),
    ("In panels 1, 2 and 5 the character appears 3 times", "3", 1.0),  # the last number without tags
    ("<answer>5</answer> (panels 1 and 2)", "5", 1.0),
    ("<think>1, 2, 3</think><answer>12</answer>", "12", 1.0),
    ("<think>count: one, two</think><answer>2</answer>", "2", 1.0),
    ("<answer>twice</answer>", "2", 1.0),
    ("<answer>Two</answer>", "2", 1.0),
    ("<answer>ten</answer>", "10", 1.0),
    ("<answer>eleven</answer>", "11", 1.0),
    ("<answer>zero</answer>", "0", 1.0),
    ("<answer>no</answer>", "0", 1.0),
    ("<answer>once</answer>", "1", 1.0),
    ("once upon a time there were 2", "2", 1.0),  # "once" is prose outside tags
    ("none", "0", 0.0),  # bare "none" outside tags is prose, not a count
    ("no idea", "1", 0.0),
    ("", "1", 0.0),
    ("<answer>4</answer>", "3", 0.0),
    ("<answer>6</answer>", "7", 0.0),
    ("<answer>-1</answer>", "1", 0.0),
    ("<answer>03</answer>", "3", 1.0),
    ("<answer>The character appears 6 times.</answer>", "6", 1.0),
    ("<answer>" + "9" * 30 + "</answer>", "3", 0.0),
    ("The answer is 7.", "7", 1.0),
    ("Answer: 1", "1", 1.0),
    ("There are three of them.", "3", 1.0),
    ("<answer>3</answer><answer>4</answer>", "4", 1.0),
    ("<answer>4", "4", 1.0),
    ("<ANSWER>5</ANSWER>", "5", 1.0),
    ("<think>maybe 8</think>", "8", 0.0),
    (CALL + "<answer>2</answer>", "2", 1.0),  # the box numbers are not the answer
    (CALL, "400", 0.0),
    (("<think>zoom</think>", "<think>one more</think>", "<think>she is in 2 panels</think><answer>2</answer>"),
     "2", 1.0),
    (("<think>zoom</think>", "<think>I see her</think><answer>one</answer>"), "2", 0.0),
]

OPEN_CASES = [
    ("<answer>a red ball</answer>", "a red ball", 1.0),
    ("<answer>A red ball.</answer>", "a red ball", 1.0),
    ("<answer>red ball</answer>", "a red ball", 1.0),  # articles do not count
    ("<answer>The red ball</answer>", "a red ball", 1.0),
    ("<answer>RED   BALL!</answer>", "a red ball", 1.0),
    ("<answer>red-ball</answer>", "a red ball", 1.0),
    ("a red ball", "a red ball", 1.0),
    ("<answer>a big red ball</answer>", "a red ball", 0.0),
    ("<answer>He holds a red ball in his hand while running</answer>", "a red ball", 0.0),  # no substring credit
    ("<answer>a red ball a red ball a red ball</answer>", "a red ball", 0.0),
    ("<think>a red ball</think>", "a red ball", 0.0),
    ("", "a red ball", 0.0),
    ("<answer>   </answer>", "a red ball", 0.0),
    ("<answer>a blue ball</answer>", "a red ball", 0.0),
    ("<answer>the hero sits down</answer>", "The hero sits down.", 1.0),
    ("<answer>the hero sits</answer>", "The hero sits down.", 0.0),
    ("<answer>He is angry</answer>", "He is angry.", 1.0),
    ("<answer>angry</answer>", "He is angry.", 0.0),
    ("<answer>It is raining.</answer>", "It is raining", 1.0),
    ("<answer>It's raining</answer>", "It is raining", 0.0),  # strict without a judge
    ("<answer>Two</answer>", "two", 1.0),
    ("<answer>2</answer>", "two", 0.0),
    ("<answer>a cat</answer><answer>a dog</answer>", "a dog", 1.0),
    ("<answer>a dog", "a dog", 1.0),
    ("<ANSWER>A Dog</ANSWER>", "a dog", 1.0),
    ("The dog", "a dog", 1.0),
    ("I think it is a dog", "a dog", 0.0),
    (CALL + "<answer>the moon</answer>", "The moon", 1.0),
    ("<answer>moon and stars</answer>", "the moon", 0.0),
    ("<answer>Café</answer>", "café", 1.0),
    ("<answer>ｆｕｌｌｗｉｄｔｈ</answer>", "fullwidth", 1.0),  # NFKC
    ("<answer>They are fighting over a sword.</answer>", "They are fighting over a sword", 1.0),
    ("<answer>They are fighting.</answer>", "They are fighting over a sword", 0.0),
    ("<answer>yes</answer>", "Yes.", 1.0),
    ("<answer>no</answer>", "Yes.", 0.0),
    ("<answer>Night time</answer>", "night-time", 1.0),
    ("<answer>An apple</answer>", "apple", 1.0),
    ("<answer>apples</answer>", "apple", 0.0),
    ("<answer>The woman in the red dress is laughing</answer>", "The woman in the red dress is laughing.", 1.0),
    ("<answer>The woman is laughing</answer>", "The woman in the red dress is laughing.", 0.0),
    (("<think>zoom</think>", "<think>the sky</think><answer>the moon</answer>"), "the moon", 1.0),
    (("<think>zoom</think>", "<think>the sky</think><answer>stars</answer>"), "the moon", 0.0),
]


def fake_judge(question: str, reference: str, prediction: str) -> bool | None:
    """A stand-in LLM judge: correct when every reference word is in the prediction and it does not say
    "not"; raises on "ERROR" and gives no verdict on "UNSURE" (both judge failures: score 0)."""
    if "ERROR" in prediction:
        raise TimeoutError("judge timed out")
    if "UNSURE" in prediction:
        return None
    words = set(normalize_open(prediction).split())
    return set(normalize_open(reference).split()) <= words and "not" not in words


JUDGE_CASES = [
    ("<answer>He holds a red ball in his hand</answer>", "a red ball", 1.0),  # the judge accepts paraphrase
    ("<answer>a red ball</answer>", "a red ball", 1.0),
    ("<answer>It is not a red ball</answer>", "a red ball", 0.0),
    ("<answer>a blue ball</answer>", "a red ball", 0.0),
    ("<answer>ERROR</answer>", "a red ball", 0.0),  # the judge raised
    ("<answer>UNSURE red ball</answer>", "a red ball", 0.0),  # no verdict
    ("<think>a red ball</think>", "a red ball", 0.0),  # nothing to judge: the judge is not asked
    ("The hero sits down on the bench.", "the hero sits down", 1.0),
    ("<answer>the hero stands</answer>", "the hero sits down", 0.0),
    (CALL + "<answer>the full moon over the city</answer>", "the moon", 1.0),
    (("<think>zoom</think>", "<think>sky</think><answer>a bright moon</answer>"), "the moon", 1.0),
    (("<think>zoom</think>", "<think>sky</think><answer>clouds</answer>"), "the moon", 0.0),
]


# ------------------------------------------------------------------------------------------ the two paths


def _process_results(task_yaml: str):
    """The ``process_results`` function a task YAML names, resolved as lmms-eval resolves it: follow
    ``include``, read ``!function module.name``, load ``module.py`` next to the YAML by file path."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))
    config, path = {}, TASKS / task_yaml
    while True:
        own = yaml.load(path.read_text(), Loader=Loader)
        config = {**own, **config}
        if "include" not in own:
            break
        path = TASKS / own["include"]
    _tag, spec = config["process_results"]
    module_name, function_name = spec.rsplit(".", 1)
    loaded = importlib.util.spec_from_file_location(module_name, TASKS / f"{module_name}.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return getattr(module, function_name)


PROCESS_RESULTS = {
    "choice": _process_results("ai4va_fg_action_recognition_tool.yaml"),
    "number": _process_results("ai4va_fg_character_counting_tool.yaml"),
    "open": _process_results("ai4va_fg_panel_understanding_tool.yaml"),
}


def _row(answer_type: str, key: str, choices, n: int) -> dict:
    task = {"choice": "action_recognition", "number": "character_counting", "open": "panel_understanding"}[answer_type]
    return {"id": f"{task}/page_{n:04d}/0", "task": task, "source": "demo", "page_id": f"page_{n:04d}",
            "image": None, "question": "What is the marked character doing?", "choices": list(choices),
            "answer": key, "answer_type": answer_type, "bboxes": [[10.0, 20.0, 300.0, 400.0]]}


def _turns(completion) -> list[str]:
    return [completion] if isinstance(completion, str) else list(completion)


def _eval_output(completion) -> str:
    """The model output lmms-eval hands to ``process_results``: the text, or the zoom agent's record."""
    if isinstance(completion, str):
        return completion
    turns = [t + CALL for t in completion[:-1]] + [completion[-1]]
    return Trajectory(turns=turns, tool_calls=len(turns) - 1, crops=[[10.0, 20.0, 300.0, 400.0]] * (len(turns) - 1),
                      stop="answer").dumps()


def _trl_completion(completion) -> list[dict]:
    """The conversational completion TRL passes to reward functions: assistant turns with parsed
    ``tool_calls``, a ``tool`` message after each."""
    turns, messages = _turns(completion), []
    for i, text in enumerate(turns):
        message = {"role": "assistant", "content": text}
        if i < len(turns) - 1:
            message["tool_calls"] = [{"type": "function", "function": {
                "name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 300, 400]}}}]
        messages.append(message)
        if i < len(turns) - 1:
            messages.append({"role": "tool", "name": "image_zoom_in_tool", "content": [{"type": "image"}]})
    return messages


def _accuracy_reward(judge=None):
    """The accuracy reward function exactly as ``RARLTrainer`` builds its ``reward_funcs``."""
    from trl.trainer.utils import get_callable_name

    from trl_rarl.config import RARLConfig
    from trl_rarl.rewards import rarl_reward_funcs

    funcs = rarl_reward_funcs(RARLConfig("/tmp/unused-rarl-output", use_cpu=True), judge)
    (reward,) = [f for f in funcs if get_callable_name(f) == "accuracy_reward"]
    return reward


def _reward_path(rows: list[dict], completions: list, judge=None) -> list[float]:
    """Call the accuracy reward as ``GRPOTrainer._calculate_rewards`` does (dataset columns but ``prompt``
    as keyword lists, ``trainer_state``, ``log_extra``, ``log_metric``)."""
    inputs = [{**row, "prompt": [{"role": "user", "content": row["question"]}]} for row in rows]
    keys = [k for k in inputs[0] if k not in ("prompt", "completion", "completion_ids")]
    reward_kwargs = {k: [x[k] for x in inputs] for k in keys}
    reward_kwargs.update(trainer_state=SimpleNamespace(global_step=100), log_extra=lambda *a, **k: None,
                         log_metric=lambda *a, **k: None)
    return _accuracy_reward(judge)(prompts=[x["prompt"] for x in inputs],
                                   completions=[_trl_completion(c) for c in completions],
                                   completion_ids=[[0]] * len(completions), **reward_kwargs)


def _metric_path(rows: list[dict], completions: list) -> list[dict]:
    return [PROCESS_RESULTS[row["answer_type"]](row, [_eval_output(c)]) for row, c in zip(rows, completions)]


def _check_table(answer_type, rows, completions, expected, monkeypatch, judge=None):
    monkeypatch.setattr(eval_scoring, "default_judge", lambda: judge)
    metric = [r["accuracy"] for r in _metric_path(rows, completions)]
    reward = _reward_path(rows, completions, judge)
    table = list(zip(completions, expected, metric, reward))
    wrong = [(c, e, m, r) for c, e, m, r in table if not (m == r == e)]
    assert not wrong, f"{answer_type}: (completion, expected, metric, reward) that disagree: {wrong}"
    return metric


def test_choice_table(monkeypatch):
    assert len(CHOICE_CASES) >= 40
    rows = [_row("choice", key, choices, n) for n, (_, choices, key, _) in enumerate(CHOICE_CASES)]
    _check_table("choice", rows, [c[0] for c in CHOICE_CASES], [c[3] for c in CHOICE_CASES], monkeypatch)


def test_number_table(monkeypatch):
    assert len(NUMBER_CASES) >= 40
    rows = [_row("number", key, [], n) for n, (_, key, _) in enumerate(NUMBER_CASES)]
    _check_table("number", rows, [c[0] for c in NUMBER_CASES], [c[2] for c in NUMBER_CASES], monkeypatch)
    # the metric's MAE is the distance to the number the reward read
    out = _metric_path(rows[6:8], [NUMBER_CASES[6][0], NUMBER_CASES[7][0]])
    assert [o["mae"] for o in out] == [0.0, 0.5] and [o["parse_failure"] for o in out] == [0.0, 0.0]


def test_open_table_without_judge(monkeypatch):
    assert len(OPEN_CASES) >= 40
    rows = [_row("open", key, [], n) for n, (_, key, _) in enumerate(OPEN_CASES)]
    _check_table("open", rows, [c[0] for c in OPEN_CASES], [c[2] for c in OPEN_CASES], monkeypatch)


def test_open_table_with_a_judge(monkeypatch):
    calls = []

    def judge(question, reference, prediction):
        calls.append((question, reference, prediction))
        return fake_judge(question, reference, prediction)

    rows = [_row("open", key, [], n) for n, (_, key, _) in enumerate(JUDGE_CASES)]
    completions = [c[0] for c in JUDGE_CASES]
    metric = _check_table("open", rows, completions, [c[2] for c in JUDGE_CASES], monkeypatch, judge)
    # both paths asked the judge the same questions about the same extracted answers
    half = len(calls) // 2
    assert calls[:half] == calls[half:] and ("What is the marked character doing?", "a red ball",
                                             "He holds a red ball in his hand") in calls
    assert not [c for c in calls if "<think>" in c[2] or "<answer>" in c[2]]
    failures = [r["judge_failure"] for r in _metric_path(rows[4:7], completions[4:7])]
    assert failures == [1.0, 1.0, 0.0] and metric[4:7] == [0.0, 0.0, 0.0]


def test_sft_r_filter_keeps_what_the_metric_counts():
    """``recipes/distill_sft_r.py`` keeps a teacher reply when the shared scorer says it is correct."""
    from PIL import Image

    from recipes.distill_sft_r import distill
    from trl_rarl.rewards import format_score

    rows, replies = [], []
    for n, (completion, choices, key, expected) in enumerate(CHOICE_CASES):
        if isinstance(completion, str) and completion:
            row = _row("choice", key, choices, n)
            row["image"] = Image.new("RGB", (8, 8))
            rows.append(row)
            replies.append((f"<think>looking</think><answer>{completion}</answer>"
                            if "<" not in completion else f"<think>looking</think>{completion}", expected))

    class Teacher:
        def __init__(self):
            self.n = 0

        def generate(self, prompt, images):
            self.n += 1
            return replies[self.n - 1][0]

    kept, stats = distill(rows, Teacher())
    kept_ids = {k["id"] for k in kept}
    for row, (reply, _) in zip(rows, replies):
        metric = eval_scoring.score_sample(row, reply)["accuracy"]
        well_formed = format_score(reply, "think") == 1.0  # the filter's other condition
        assert (row["id"] in kept_ids) == (well_formed and metric == 1.0), reply
    assert sum(v for k, v in stats.items() if k.endswith("/kept")) == len(kept) > 10
    assert stats["action_recognition/wrong"] > 0


def test_scorer_rejects_bad_rows_with_clear_errors():
    with pytest.raises(ValueError, match="unknown answer_type 'bogus'"):
        score_answer("B", answer_type="bogus", key="B")
    with pytest.raises(ValueError, match="'F' is not one of the option letters 'AB'"):
        score_answer("B", answer_type="choice", key="F", choices=YES_NO)
    with pytest.raises(ValueError, match="counting answer 'many' is not an integer"):
        score_answer("3", answer_type="number", key="many")
    result = score_answer("<answer>2.5</answer>", answer_type="number", key="3")
    assert (result.score, result.extracted, result.reason) == (0.0, 2.5, "wrong")
    result = score_answer("no idea", answer_type="number", key="3")
    assert result.parse_failure and result.extracted is None
    assert json.loads(_eval_output(("a", "b")))["turns"][0].endswith("</tool_call>")
