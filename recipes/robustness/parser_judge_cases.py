"""Hostile inputs for the tool-call parser, the rewards, the zoom tool, the Panel Understanding judge and
``ai4va-fg report`` (areas ``parser``, ``judge``, ``report``).

Classification (see :mod:`cases`):

* parser / zoom tool / rewards: a hostile completion or tool argument must come back as a malformed call
  (:class:`~ai4va_fg_dataset.core.zoom_tool.ToolCallError`, or a rejected :class:`ZoomTool` call with
  ``record.malformed``) with zero format and tool reward: ``HANDLED``. Accepted as a call, cropped, or
  rewarded: ``SILENTLY_WRONG``. An exception escaping: ``TRACEBACK`` (the runner). Slower than the
  linear bound: ``HANG``;
* judge: a reply that is not a well-formed verdict must give ``correct=None`` and nothing cached
  (``HANDLED``); counted or cached as a verdict is ``SILENTLY_WRONG``; corrupt cache files must be
  ignored and rewritten (``HANDLED``); bad settings must be a ``ValueError`` naming the setting
  (``CLEAR_ERROR``), accepted is ``SILENTLY_WRONG``; an API key echoed by the server must not reach the
  cache, the logs or the verdict's error (``SILENTLY_WRONG`` if it does);
* report: the real CLI in a subprocess; bad input must exit 2 with one line naming the file
  (``CLEAR_ERROR``); inputs it can render (a metric no float holds) must exit 0 with ``-`` in the cell.

Everything runs offline: the judge talks to a scripted OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cases import Case, Outcome, classify, run_cli

SECRET = "sk-robustness-secret-0123456789abcdef"
TOOL = "image_zoom_in_tool"


def _zoom_text(box_json: str, extra: str = "") -> str:
    return '<tool_call>{"name": "' + TOOL + '", "arguments": {"bbox_2d": ' + box_json + extra + "}}</tool_call>"


def _conv(args) -> list[dict]:
    call = {"type": "function", "function": {"name": TOOL, "arguments": args}}
    return [{"role": "assistant", "content": "<think>zoom</think>", "tool_calls": [call]},
            {"role": "tool", "name": TOOL, "content": "crop"},
            {"role": "assistant", "content": "<think>ok</think><answer>B</answer>"}]


class _Frame:
    """The model sees the page at its own size (no transformers import)."""

    def resized(self, width, height):
        return (width, height)

    def visual_tokens(self, width, height):
        return 1


def _all_rewards(completion, env=None) -> list[float]:
    from trl_rarl import rewards as R

    kw = {"completions": [completion], "environments": [env], "answer": ["B"], "answer_type": ["choice"],
          "choices": [["x", "y"]]}
    return (R.format_reward([completion]) + R.accuracy_reward([completion], ["B"], ["choice"])
            + R.tool_count_reward(**kw) + R.tool_iou_reward(**kw))


# ------------------------------------------------------------------------------------------ parser


def _malformed_completion(text: str, needle: str, time_limit: float = 5.0) -> Callable[[Path], Outcome]:
    """Case: ``text`` (a completion) must give only malformed calls, format reward 0, finite rewards."""

    def run(workdir: Path):
        from ai4va_fg_dataset.core.tool_calls import ToolCall, parse_tool_calls
        from trl_rarl import rewards as R

        t = time.perf_counter()
        calls = parse_tool_calls(text)
        rewards = _all_rewards("<think>a</think>" + text)
        seconds = time.perf_counter() - t
        if seconds > time_limit:
            return Outcome.HANG, f"{seconds:.1f} s for {len(text)} characters"
        if any(isinstance(c, ToolCall) for c in calls):
            return Outcome.SILENTLY_WRONG, "accepted as a zoom call"
        if not all(math.isfinite(r) for r in rewards) or rewards[0] != 0.0:
            return Outcome.SILENTLY_WRONG, f"rewards {rewards}"
        reasons = "; ".join(c.reason for c in calls)[:150]
        if needle not in reasons:
            return Outcome.SILENTLY_WRONG, f"unexpected reason: {reasons}"
        if R.count_parse_failures(text) != len(calls):
            return Outcome.SILENTLY_WRONG, "parse failures not counted"
        return Outcome.HANDLED, f"{len(calls)} malformed call(s): {reasons} ({seconds:.2f} s)"

    return run


def _linear(unit: str, label: str) -> Callable[[Path], Outcome]:
    """Case: 1 MB of ``unit`` repeated through every reward must cost about 10x 100 kB (not 100x)."""

    def run(workdir: Path):
        from ai4va_fg_dataset.core.tool_calls import parse_tool_calls
        from trl_rarl import rewards as R

        times = []
        for size in (100_000, 1_000_000):
            text = unit * (size // len(unit))
            best = math.inf
            for _ in range(3):
                t = time.perf_counter()
                parse_tool_calls(text)
                R.format_reward([text])
                R.accuracy_reward([text], ["A"], ["choice"])
                best = min(best, time.perf_counter() - t)
            times.append(best)
        small, big = times
        note = f"{label}: {small * 1000:.1f} ms at 100 kB, {big * 1000:.1f} ms at 1 MB"
        if big > 30 * small + 0.5 or big > 10:
            return Outcome.HANG, note + " (super-linear)"
        return Outcome.HANDLED, note

    return run


def _zoom_tool_box(box, label=None) -> Callable[[Path], Outcome]:
    """Case: :class:`ZoomTool` called directly with a hostile box must reject it as malformed."""

    def run(workdir: Path):
        from PIL import Image

        from ai4va_fg_dataset.core.zoom_tool import ZoomTool

        tool = ZoomTool(Image.new("RGB", (100, 100)))
        res = tool(box, label)
        if res.ok or tool.executed_boxes:
            return Outcome.SILENTLY_WRONG, f"cropped {res.record.executed}"
        if not res.record.malformed:
            return Outcome.SILENTLY_WRONG, f"rejected but not as malformed: {res.error}"
        return Outcome.HANDLED, res.error[:150]

    return run


def _same_verdict(args: dict) -> Callable[[Path], Outcome]:
    """Case: parser, zoom tool, environment, format and tool rewards agree that ``args`` is malformed."""

    def run(workdir: Path):
        from PIL import Image

        from ai4va_fg_dataset.core.tool_calls import ToolCallError, parse_tool_calls
        from trl_rarl.environment import ZoomEnvironment

        parsed = parse_tool_calls(f'<tool_call>{json.dumps({"name": TOOL, "arguments": args})}</tool_call>')
        env = ZoomEnvironment(_Frame(), max_calls=None)
        env.reset(image=Image.new("RGB", (100, 80)), bboxes=[[0, 0, 28, 28]])
        reply = env.image_zoom_in_tool(**args)
        completion = _conv(args)
        rewards = _all_rewards(completion, env)
        verdicts = {"parser": isinstance(parsed[0], ToolCallError),
                    "environment": isinstance(reply, str) and reply.startswith("Error:"),
                    "format reward": rewards[0] == 0.0,
                    "tool rewards": rewards[2] == 0.0 and rewards[3] == 0.0 and not env.tool.executed_boxes}
        if not all(verdicts.values()):
            return Outcome.SILENTLY_WRONG, f"verdicts differ: {verdicts}"
        return Outcome.HANDLED, f"malformed everywhere: {parsed[0].reason[:100]}"

    return run


def _trl_args(args) -> Callable[[Path], Outcome]:
    """Case: arguments TRL parsed that cannot be written back as JSON score 0 and count as a failure."""

    def run(workdir: Path):
        from trl_rarl import rewards as R

        completion = _conv(args)
        rewards = _all_rewards(completion)
        if rewards[0] != 0.0 or R.count_parse_failures(completion) != 1:
            return Outcome.SILENTLY_WRONG, f"rewards {rewards}"
        return Outcome.HANDLED, "format 0, one parse failure"

    return run


def _fuzz(workdir: Path):
    """2000 seeded random completions from tag / JSON fragments: no exception, finite rewards."""
    from PIL import Image

    from ai4va_fg_dataset.core.zoom_tool import ToolCall, ZoomTool, parse_tool_calls

    fragments = ["<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>", "{", "}", "[", "]",
                 '"', ":", ",", "\\", '"name"', '"arguments"', '"bbox_2d"', f'"{TOOL}"', "0", "12", "1e999", "NaN",
                 "9" * 400, '"1289"', "[0, 0, 10, 10]", "[" * 40, "true", "null", "B", " ", "\n", "\x00", "\ud800"]
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 40)))
        calls = parse_tool_calls(text)
        for c in calls:
            if isinstance(c, ToolCall) and not all(math.isfinite(v) for v in c.bbox_2d):
                return Outcome.SILENTLY_WRONG, f"non-finite box accepted from {text[:80]!r}"
        tool = ZoomTool(Image.new("RGB", (64, 48)), max_calls=8)
        for c in calls:
            tool.execute(c)
        env = type("Env", (), {"tool": tool, "gt_boxes": [(0.0, 0.0, 9.0, 9.0)]})()
        rewards = _all_rewards(text, env) + _all_rewards([{"role": "assistant", "content": text}], env)
        if not all(isinstance(r, float) and math.isfinite(r) for r in rewards):
            return Outcome.SILENTLY_WRONG, f"non-finite reward for {text[:80]!r}"
    return Outcome.HANDLED, "2000 random completions: no exception, finite rewards"


def _agent_step(workdir: Path):
    """The eval agent's turn step on hostile output: one rejected call, no crop, no exception."""
    from PIL import Image

    from ai4va_fg_dataset.core.zoom_tool import ZoomTool
    from lmms_eval_tasks.models.zoom_agent import ZoomAgent, _Conversation

    agent = object.__new__(ZoomAgent)
    agent.max_turns = 5
    for text in (_zoom_text("[0, 0, 1" + "0" * 5000 + ", 4]"), _zoom_text('"1289"'),
                 "<tool_call>" + "[" * 1000 + "]" * 1000 + "</tool_call>", "<think>x</think>" + "<tool_call>" * 90_000):
        tool = ZoomTool(Image.new("RGB", (100, 100)), max_calls=8)
        conv = _Conversation(messages=[], images=[], tool=tool)
        agent._step(conv, text, 0)
        if tool.executed_boxes or len(conv.trajectory.tool_errors) != 1:
            return Outcome.SILENTLY_WRONG, f"{text[:60]!r}: crops {tool.executed_boxes}"
    return Outcome.HANDLED, "4 hostile turns: one rejected call each, no crop"


def _trajectory(record: str) -> Callable[[Path], Outcome]:
    def run(workdir: Path):
        from lmms_eval_tasks import trajectory

        traj = trajectory.loads(record)
        if traj.crops is not None:
            return Outcome.SILENTLY_WRONG, f"crops {traj.crops!r:.80} taken from a malformed record"
        return Outcome.HANDLED, "read as plain text"

    return run


def _rarl_judge(reply, expect_error: bool) -> Callable[[Path], Outcome]:
    def run(workdir: Path):
        from trl_rarl import rewards as R

        client = type("Client", (), {"generate": lambda self, prompt, images: reply})()
        score = R.accuracy_reward(["<answer>p</answer>"], ["r"], ["open"], judge=R.make_llm_judge(client))[0]
        if expect_error and score != 0.0:
            return Outcome.SILENTLY_WRONG, f"reply {reply!r} scored {score}"
        return Outcome.HANDLED, f"reply {reply!r:.40} scored {score}"

    return run


def _nan_judge(workdir: Path):
    from trl_rarl import rewards as R

    score = R.accuracy_reward(["<answer>p</answer>"], ["r"], ["open"], judge=lambda q, r, p: math.nan)[0]
    return (Outcome.HANDLED, "NaN judge scores 0") if score == 0.0 else (Outcome.SILENTLY_WRONG, f"NaN scored {score}")


# ------------------------------------------------------------------------------------------- judge


def _completion(content) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


@contextlib.contextmanager
def _server(bodies: list[bytes], default: bytes) -> Iterator[tuple[str, list[int]]]:
    """A local ``/v1/chat/completions`` answering HTTP 200 ``application/json`` with ``bodies`` in turn."""
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            count[0] += 1
            body = bodies.pop(0) if bodies else default
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", count
    finally:
        httpd.shutdown()
        httpd.server_close()


def _judge(url: str, workdir: Path, retries: int = 1):
    from lmms_eval_tasks.judge import Judge, JudgeConfig

    cfg = JudgeConfig(provider="openai", model="judge-model", base_url=url, api_key=SECRET,
                      cache_dir=str(workdir / "cache"), max_retries=retries, backoff=0.0, timeout=5.0)
    return Judge(cfg, sleep=lambda s: None)


def _cached(workdir: Path) -> list[Path]:
    return sorted((workdir / "cache").rglob("*.json")) if (workdir / "cache").is_dir() else []


def _bad_reply(body: bytes) -> Callable[[Path], Outcome]:
    """Case: a 200 reply that is not a well-formed verdict is a failure, retried, never cached."""

    def run(workdir: Path):
        with _server([], body) as (url, count):
            v = _judge(url, workdir).judge("q", "ref", "pred")
        if v.correct is not None:
            return Outcome.SILENTLY_WRONG, f"scored correct={v.correct}"
        if _cached(workdir):
            return Outcome.SILENTLY_WRONG, "failure cached"
        if count[0] != 2:
            return Outcome.SILENTLY_WRONG, f"{count[0]} request(s), expected 1 + 1 retry"
        return Outcome.HANDLED, f"judge failure after {v.attempts} attempts: {v.error[:100]}"

    return run


def _corrupt_cache(content: bytes) -> Callable[[Path], Outcome]:
    """Case: a corrupt cache entry is ignored, judged again and rewritten."""

    def run(workdir: Path):
        with _server([], _completion('{"correct": false}')) as (url, count):
            judge = _judge(url, workdir)
            path = judge._cache_path(judge.cache_key("q", "ref", "pred"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            v = judge.judge("q", "ref", "pred")
        if v.correct is not False or v.cached or count[0] != 1:
            return Outcome.SILENTLY_WRONG, f"verdict {v} after {count[0]} request(s)"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Outcome.SILENTLY_WRONG, "corrupt entry not rewritten"
        if record.get("correct") is not False:
            return Outcome.SILENTLY_WRONG, f"rewritten entry {record}"
        return Outcome.HANDLED, "ignored, judged again, rewritten"

    return run


def _cache_unwritable(workdir: Path):
    (workdir / "cache").write_text("a file where the cache folder should be")
    with _server([], _completion('{"correct": true}')) as (url, _count):
        v = _judge(url, workdir).judge("q", "ref", "pred")
    if v.correct is not True:
        return Outcome.SILENTLY_WRONG, f"verdict lost: {v}"
    return Outcome.HANDLED, "verdict kept, not cached (warning logged)"


def _setting(build: Callable[[], object], name: str) -> Callable[[Path], Outcome]:
    """Case: a bad setting must be refused at configuration time with a ValueError naming it."""

    def run(workdir: Path):
        try:
            build()
        except ValueError as exc:
            msg = str(exc)
            if name not in msg or "\n" in msg:
                return Outcome.SILENTLY_WRONG, f"error does not name {name}: {msg[:120]}"
            return Outcome.CLEAR_ERROR, msg[:150]
        return Outcome.SILENTLY_WRONG, "accepted"

    return run


def _config(**kw) -> Callable[[], object]:
    def build():
        from lmms_eval_tasks.judge import JudgeConfig

        return JudgeConfig(**kw)

    return build


def _env_config(env: dict) -> Callable[[], object]:
    def build():
        from lmms_eval_tasks.judge import JudgeConfig

        return JudgeConfig.from_env(env)

    return build


def _key_echo(workdir: Path):
    """The server echoes the API key in a verdict's reason and in a non-verdict: never written."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("lmms_eval_tasks.judge")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        bodies = [_completion(f'{{"correct": true, "reason": "your key is {SECRET}"}}')]
        with _server(bodies, _completion(f"Bearer {SECRET} is not a verdict")) as (url, _count):
            judge = _judge(url, workdir)
            first = judge.judge("q", "ref", "pred")
            second = judge.judge("q2", "ref", "pred")
    finally:
        log.removeHandler(handler)
    leaks = [where for where, text in (("cache", "".join(p.read_text() for p in _cached(workdir))),
                                       ("logs", stream.getvalue()), ("verdict error", second.error or ""))
             if SECRET in text]
    if leaks or first.correct is not True or second.correct is not None:
        return Outcome.SILENTLY_WRONG, f"key written to {leaks}" if leaks else f"verdicts {first}, {second}"
    return Outcome.HANDLED, "key redacted in cache, logs and error"


# ------------------------------------------------------------------------------------------ report


def _report(name: str, content: bytes | None, *, expect_ok: bool = False, out_is_file: bool = False,
            needle: str = "") -> Callable[[Path], Outcome]:
    """Case: ``ai4va-fg report FILE --out DIR`` on hostile input (the real CLI, a subprocess)."""

    def run(workdir: Path):
        path = workdir / name
        if content is not None:
            path.write_bytes(content)
        out = workdir / "out"
        if out_is_file:
            out.write_text("not a folder")
        result = run_cli(["report", str(path), "--out", str(out)], timeout_s=60)
        outcome = classify(result, expect_ok=expect_ok)
        lines = result.stderr.strip().splitlines()
        named = str(out) if out_is_file else name
        if outcome is Outcome.CLEAR_ERROR:
            if result.returncode != 2 or len(lines) != 1 or named not in lines[0]:
                return Outcome.SILENTLY_WRONG, f"exit {result.returncode}, stderr {result.stderr[-150:]!r}"
            if needle and needle not in lines[0]:
                return Outcome.SILENTLY_WRONG, f"message lacks {needle!r}: {lines[0][:120]}"
            return outcome, lines[0][:150]
        if outcome is Outcome.HANDLED:
            md = (out / "ai4va_fg_results.md").read_text()
            if "| m | - | - |" not in md:  # the model row: PanelU absent, Action (the bad value) shown as "-"
                return Outcome.SILENTLY_WRONG, "a non-finite or absurd metric rendered as a number"
            return outcome, "rendered; the bad cell shows '-'"
        return outcome, result.stderr.strip()[-150:]

    return run


def _results(metrics: str = '{"accuracy,none": 0.5}', config: str = '{"model_args": "pretrained=m"}') -> bytes:
    return ('{"results": {"ai4va_fg_action_recognition": ' + metrics + '}, "config": ' + config + "}").encode()


def _deep(n: int) -> list:
    out: list = []
    for _ in range(n):
        out = [out]
    return out


def _many_calls():
    from ai4va_fg_dataset.core.tool_calls import MAX_CALLS_PER_TEXT, ToolCall, ToolCallError, parse_tool_calls

    block = _zoom_text("[0, 0, 5, 5]")
    calls = parse_tool_calls(block * 10_000)
    if len(calls) != MAX_CALLS_PER_TEXT + 1 or not isinstance(calls[-1], ToolCallError):
        return Outcome.SILENTLY_WRONG, f"{len(calls)} results"
    if not all(isinstance(c, ToolCall) for c in calls[:-1]):
        return Outcome.SILENTLY_WRONG, "a well-formed call was rejected"
    return Outcome.HANDLED, f"{MAX_CALLS_PER_TEXT} calls read, then: {calls[-1].reason}"


# -------------------------------------------------------------------------------------------- cases

_BIG = "1" + "0" * 4999
CASES: list[Case] = [
    # --- parser: the completions
    Case("parser-309-digit-coordinate", "parser", _malformed_completion(_zoom_text("[0, 0, " + "9" * 309 + ", 40]"),
         "out of range"), 30, "bbox_2d with a 309-digit number (OverflowError before): malformed, reward 0"),
    Case("parser-5000-digit-coordinate", "parser", _malformed_completion(_zoom_text(f"[0, 0, {_BIG}, 40]"), "limit"),
         30, "bbox_2d with a 5000-digit number (int() limit ValueError before): malformed, reward 0"),
    Case("parser-3000-digit-coordinate", "parser", _malformed_completion(_zoom_text("[0, 0, " + "7" * 3000 + ", 4]"),
         "out of range"), 30, "3000-digit number inside the block size limit: out of range, never int()-converted", fast=False),
    Case("parser-1000-nested-brackets", "parser", _malformed_completion("<tool_call>" + "[" * 1000 + "]" * 1000
         + "</tool_call>", "nested"), 30, "'[' x1000 inside a block (RecursionError before): malformed"),
    Case("parser-nested-args-object", "parser", _malformed_completion(_zoom_text('[0, 0, 5, 5], "label": '
         + "{" * 20 + "}" * 20), "nested"), 30, "20-deep object as label: malformed", fast=False),
    Case("parser-nan-coordinate", "parser", _malformed_completion(_zoom_text("[0, NaN, 5, 5]"), "non-finite"), 30,
         "NaN literal in bbox_2d: malformed (format reward 0, like the tool)"),
    Case("parser-1e400-coordinate", "parser", _malformed_completion(_zoom_text("[0, 0, 1e400, 5]"), "non-finite"),
         30, "1e400 (inf) coordinate: malformed"),
    Case("parser-2e6-coordinate", "parser", _malformed_completion(_zoom_text("[0, 0, 2000000, 5]"), "out of range"),
         30, "coordinate beyond 1e6: malformed", fast=False),
    Case("parser-string-bbox", "parser", _malformed_completion(_zoom_text('"1289"'), "not a list of 4 numbers"), 30,
         'bbox_2d "1289": malformed'),
    Case("parser-json-string-bbox", "parser", _malformed_completion(_zoom_text('"[0, 0, 10, 10]"'),
         "not a list of 4 numbers"), 30, 'bbox_2d "[0, 0, 10, 10]" (a string): malformed', fast=False),
    Case("parser-bool-bbox", "parser", _malformed_completion(_zoom_text("[true, false, true, true]"),
         "not a list of 4 numbers"), 30, "booleans as coordinates: malformed", fast=False),
    Case("parser-object-bbox", "parser", _malformed_completion(_zoom_text('{"x1": 0, "y1": 0, "x2": 9, "y2": 9}'),
         "not a list of 4 numbers"), 30, "bbox_2d as an object: malformed", fast=False),
    Case("parser-huge-label", "parser", _malformed_completion(_zoom_text("[0, 0, 5, 5]", ', "label": "'
         + "x" * 600 + '"'), "label"), 30, "600-character label: malformed", fast=False),
    Case("parser-oversized-block", "parser", _malformed_completion(_zoom_text("[0, 0, 5, 5" + ", 0" * 3000 + "]"),
         "limit"), 30, "a 9 kB tool call: malformed without decoding", fast=False),
    Case("parser-unclosed-call", "parser", _malformed_completion('<tool_call>{"name": "' + TOOL + '", "argu',
         "unclosed"), 30, "truncated completion: one unclosed-call error", fast=False),
    Case("parser-64-plus-calls", "parser", lambda w: _many_calls(), 30, "10,000 closed calls: 64 read, one error, stop"),
    Case("parser-4mb-completion", "parser", _malformed_completion("<tool_call>" + "x" * 4_200_000, "limit"), 30,
         "a completion over the 4 Mi-character limit: one error, not scanned"),
    Case("parser-linear-unclosed-tool-calls", "parser", _linear("<tool_call>", "unclosed <tool_call>"), 60,
         "1 MB of unclosed <tool_call> (60 s before): ~10x the 100 kB time"),
    Case("parser-linear-unclosed-answers", "parser", _linear("<answer>", "unclosed <answer>"), 60,
         "1 MB of unclosed <answer> through the accuracy reward: linear"),
    Case("parser-linear-mixed-tags", "parser", _linear("<think><tool_call></think></tool_call><answer>", "mixed"),
         60, "1 MB of interleaved think/tool_call/answer tags: linear", fast=False),
    Case("parser-random-fuzz", "parser", _fuzz, 120, "2000 random tag/JSON completions: no exception, finite rewards"),
    # --- the same verdict everywhere
    Case("verdict-string-bbox", "parser", _same_verdict({"bbox_2d": "1289"}), 30,
         'image_zoom_in_tool("1289") cropped [0,0,28,28] before: malformed for parser, env, format and tool rewards'),
    Case("verdict-nan-bbox", "parser", _same_verdict({"bbox_2d": [0, math.nan, 5, 5]}), 30,
         "NaN coordinate through TRL's arguments: malformed everywhere", fast=False),
    Case("verdict-int-label", "parser", _same_verdict({"bbox_2d": [0, 0, 5, 5], "label": 7}), 30,
         "label 7 (not a string): malformed everywhere", fast=False),
    Case("verdict-nested-bbox", "parser", _same_verdict({"bbox_2d": [[0, 0], [5, 5]]}), 30,
         "bbox_2d as two points: malformed everywhere", fast=False),
    Case("zoom-tool-10e400", "parser", _zoom_tool_box([0, 0, 10**400, 40]), 30,
         "ZoomTool()([0,0,10**400,40]) (OverflowError before): rejected as malformed"),
    Case("zoom-tool-10e5000", "parser", _zoom_tool_box([0, 0, 10**5000, 40]), 30,
         "a 5000-digit Python int: rejected, its repr never built", fast=False),
    Case("zoom-tool-string-box", "parser", _zoom_tool_box("1289"), 30, 'ZoomTool()("1289"): rejected as malformed'),
    Case("zoom-tool-bytes-box", "parser", _zoom_tool_box(b"\x00\x01\x02\x03"), 30, "bytes as a box: malformed", fast=False),
    Case("trl-args-5000-digit-int", "parser", _trl_args({"bbox_2d": [0, 0, 10**5000, 4]}), 30,
         "TRL-parsed arguments json.dumps refuses (ValueError): format 0, counted"),
    Case("trl-args-deep-list", "parser", _trl_args({"bbox_2d": _deep(3000)}), 30,
         "3000-deep list in TRL arguments (RecursionError on dumps): format 0, counted"),
    Case("trl-args-object", "parser", _trl_args({"bbox_2d": object()}), 30, "a non-JSON object: format 0, counted", fast=False),
    Case("agent-step-hostile-turns", "parser", _agent_step, 120,
         "eval agent turn with a 5000-digit box, a string box, deep nesting, 90k unclosed tags", fast=False),
    Case("trajectory-bad-crops", "parser", _trajectory('{"ai4va_fg_zoom_trajectory": 1, "crops": [["a", 1, 2, 3]]}'),
         30, "tagged record with a non-numeric crop (ValueError before): read as text"),
    Case("trajectory-deep-record", "parser", _trajectory('{"ai4va_fg_zoom_trajectory": 1, "turns": ' + "[" * 5000
         + "]" * 5000 + "}"), 30, "tagged record nested 5000 deep (RecursionError before): read as text"),
    Case("rarl-judge-yesterday", "parser", _rarl_judge("Yesterday it was wrong", True), 30,
         "RARL judge reply 'Yesterday...' (counted as yes before): error, accuracy 0"),
    Case("rarl-judge-non-text", "parser", _rarl_judge(None, True), 30, "RARL judge reply None: error, accuracy 0", fast=False),
    Case("rarl-judge-nan", "parser", _nan_judge, 30, "judge returning NaN (min(1, nan) = 1 before): accuracy 0"),
    # --- judge: replies
    Case("judge-200-unparseable-json", "judge", _bad_reply(b"{not json"), 60,
         "HTTP 200, JSON content type, unparseable body (raised before): retried failure"),
    Case("judge-200-list-body", "judge", _bad_reply(b"[]"), 60, "HTTP 200 body [] : retried failure", fast=False),
    Case("judge-200-non-text-content", "judge", _bad_reply(_completion(["x"])), 60,
         "message content is a list: retried failure", fast=False),
    Case("judge-incorrect-true", "judge", _bad_reply(_completion('{"incorrect": true}')), 60,
         '{"incorrect": true} (scored correct and cached before): not a verdict'),
    Case("judge-not-correct-true", "judge", _bad_reply(_completion("not correct: true")), 60,
         "'not correct: true' (scored correct before): not a verdict"),
    Case("judge-prose-around-verdict", "judge", _bad_reply(_completion('I guess {"correct": true} but not sure')), 60,
         "prose around the JSON object: not a verdict", fast=False),
    Case("judge-duplicate-key", "judge", _bad_reply(_completion('{"correct": false, "correct": true}')), 60,
         "repeated key: not a verdict", fast=False),
    Case("judge-string-true", "judge", _bad_reply(_completion('{"correct": "true"}')), 60,
         '"true" as a string: not a verdict', fast=False),
    Case("judge-two-objects", "judge", _bad_reply(_completion('{"correct": true}{"correct": false}')), 60,
         "two objects: not a verdict", fast=False),
    Case("judge-10k-reply", "judge", _bad_reply(_completion('{"correct": true, "reason": "' + "x" * 10000 + '"}')),
         60, "a 10 kB reply: not a verdict", fast=False),
    # --- judge: cache
    Case("judge-cache-list", "judge", _corrupt_cache(b"[1, 2, 3]"), 60, "cache file holding a list (raised before)"),
    Case("judge-cache-non-utf8", "judge", _corrupt_cache(b"\xff\xfe\x00\x81"), 60,
         "cache file of non-UTF-8 bytes (raised before)"),
    Case("judge-cache-deep", "judge", _corrupt_cache(b"[" * 50_000), 60, "cache file nested 50,000 deep", fast=False),
    Case("judge-cache-truncated", "judge", _corrupt_cache(b'{"correct": tr'), 60, "truncated cache file", fast=False),
    Case("judge-cache-stale-lax-entry", "judge", _corrupt_cache(json.dumps(
         {"correct": True, "judge": "openai:judge-model", "prompt_version": 1, "reply": '{"incorrect": true}'}).encode()),
         60, "an entry the old lax parser wrote for {\"incorrect\": true}: judged again"),
    Case("judge-cache-unwritable", "judge", _cache_unwritable, 60, "cache folder path is a file: verdict kept"),
    # --- judge: settings
    Case("judge-setting-nan-backoff", "judge", _setting(_config(backoff=math.nan), "backoff"), 30,
         "backoff=NaN (accepted before)"),
    Case("judge-setting-inf-timeout", "judge", _setting(_config(timeout=math.inf), "timeout"), 30,
         "timeout=inf (accepted before)"),
    Case("judge-setting-negative-timeout", "judge", _setting(_config(timeout=-1.0), "timeout"), 30,
         "timeout=-1", fast=False),
    Case("judge-setting-nan-max-backoff", "judge", _setting(_config(max_backoff=math.nan), "max_backoff"), 30,
         "max_backoff=NaN", fast=False),
    Case("judge-setting-fractional-retries", "judge", _setting(_config(max_retries=2.5), "max_retries"), 30,
         "max_retries=2.5 (TypeError at the first request before)"),
    Case("judge-env-nan-backoff", "judge", _setting(_env_config({"AI4VA_FG_JUDGE_BACKOFF": "nan"}),
         "AI4VA_FG_JUDGE_BACKOFF"), 30, "AI4VA_FG_JUDGE_BACKOFF=nan"),
    Case("judge-env-inf-timeout", "judge", _setting(_env_config({"AI4VA_FG_JUDGE_TIMEOUT": "inf"}),
         "AI4VA_FG_JUDGE_TIMEOUT"), 30, "AI4VA_FG_JUDGE_TIMEOUT=inf", fast=False),
    # --- judge: secrets
    Case("judge-echoes-api-key", "judge", _key_echo, 60,
         "server echoes the API key (written to the cache before): redacted in cache, logs, error"),
    # --- report
    Case("report-non-utf8", "report", _report("a_results.json", b'{"results": {"x": "\xff\xfe"}}',
         needle="UTF-8"), 60, "results file with non-UTF-8 bytes (traceback before)"),
    Case("report-binary-garbage", "report", _report("b_results.json", bytes(range(256)) * 4), 60,
         "1 kB of binary garbage", fast=False),
    Case("report-empty-file", "report", _report("c_results.json", b""), 60, "an empty results file", fast=False),
    Case("report-results-list", "report", _report("d_results.json", b'{"results": [1, 2]}'), 60,
         "'results' is a list", fast=False),
    Case("report-config-list", "report", _report("e_results.json", _results(config='["x"]'), needle="config"), 60,
         "'config' is a list (traceback before)"),
    Case("report-model-args-list", "report", _report("f_results.json", _results(config='{"model_args": [1, 2]}'),
         needle="model_args"), 60, "'model_args' is a list of numbers (traceback before)"),
    Case("report-deep-nesting", "report", _report("g_results.json", b'{"results": ' + b"[" * 100_000
         + b"]" * 100_000 + b"}", needle="nested"), 60, "100,000-deep JSON (RecursionError before)"),
    Case("report-5000-digit-metric", "report", _report("h_results.json", _results('{"accuracy,none": ' + _BIG + "}"),
         expect_ok=True), 60, "a 5000-digit accuracy (ValueError before): rendered as '-'"),
    Case("report-infinity-metric", "report", _report("i_results.json", _results('{"accuracy,none": Infinity}'),
         expect_ok=True), 60, "an Infinity accuracy (rendered 'inf' before): '-'", fast=False),
    Case("report-missing-file", "report", _report("j_results.json", None), 60, "a results file that does not exist", fast=False),
    Case("report-out-is-file", "report", _report("k_results.json", _results(), out_is_file=True), 60,
         "--out names an existing file (traceback before)"),
]

