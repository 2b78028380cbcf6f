"""The record an agentic (zoom) evaluation returns for one sample, through lmms-eval's text channel.

lmms-eval hands a model's output to ``process_results`` as a string. The zoom agent
(:mod:`lmms_eval_tasks.models.zoom_agent`) therefore returns a JSON object, tagged with
:data:`TAG`, that carries the whole trajectory:

* ``turns``: the assistant texts, one per turn (tool calls included verbatim);
* ``tool_calls``: the number of ``<tool_call>`` blocks the model wrote (accepted or rejected);
* ``crops``: the boxes actually cropped, ``[x1, y1, x2, y2]`` in **page pixels** (the tool maps
  them from the frame the model sees), in call order;
* ``tool_errors``: the reasons of the rejected calls;
* ``stop``: ``"answer"`` (a turn without a tool call) or ``"max_turns"``.

Any other output (a plain model, or a model that emitted tool calls nobody executed) is read as
text: its tool calls are counted but its crops are unknown (``crops=None``). So is a tagged record
that is not well-formed (a model can write such JSON as its answer): reading never raises.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field

from ai4va_fg_dataset.core.tool_calls import loads_bounded, parse_tool_calls

TAG = "ai4va_fg_zoom_trajectory"
"""Key marking a JSON output as a zoom trajectory (its value is the format version, 1)."""

MAX_RECORD_CHARS = 1 << 26
"""Longest trajectory record decoded (64 Mi characters); a longer output is read as text."""


@dataclass
class Trajectory:
    """One sample's agentic run (see the module docstring)."""

    turns: list[str]
    tool_calls: int = 0
    crops: list[list[float]] | None = None
    tool_errors: list[str] = field(default_factory=list)
    stop: str = "answer"

    @property
    def text(self) -> str:
        """All assistant turns joined: the text the answer is read from (the last ``<answer>`` wins)."""
        return "\n".join(self.turns)

    def dumps(self) -> str:
        """Encode as the JSON string the agent returns to lmms-eval."""
        return json.dumps(
            {
                TAG: 1,
                "turns": self.turns,
                "tool_calls": self.tool_calls,
                "crops": self.crops,
                "tool_errors": self.tool_errors,
                "stop": self.stop,
            },
            ensure_ascii=False,
        )


def loads(output: object) -> Trajectory:
    """Read a model output: a zoom-agent JSON record, or plain text (crops unknown).

    Args:
        output: what lmms-eval passes to ``process_results`` (normally a ``str``; ``None`` or other
            types are read as empty text).

    Returns:
        A :class:`Trajectory`. A record is used only when well-formed: ``turns`` and ``tool_errors``
        lists of strings, ``tool_calls`` a non-negative integer, ``crops`` ``null`` or a list of
        ``[x1, y1, x2, y2]`` lists of finite numbers, ``stop`` a string. Anything else (plain text, or
        a malformed, hostile, too large or too deeply nested record) gives one turn of text,
        ``tool_calls`` = the number of ``<tool_call>`` blocks in it (parsed with
        :func:`ai4va_fg_dataset.core.zoom_tool.parse_tool_calls`) and ``crops=None``. Never raises.
    """
    if not isinstance(output, str):
        output = "" if output is None else str(output)
    stripped = output.strip()
    if stripped.startswith("{") and TAG in stripped:
        record = _record(stripped)
        if record is not None:
            return record
    return Trajectory(turns=[output], tool_calls=len(parse_tool_calls(output)), crops=None)


def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _record(text: str) -> Trajectory | None:
    """The :class:`Trajectory` a tagged JSON record holds, or ``None`` when it is not a well-formed one."""
    ok, obj = loads_bounded(text, max_chars=MAX_RECORD_CHARS, max_depth=4)
    if not ok or not isinstance(obj, dict) or obj.get(TAG) != 1:
        return None
    turns = obj.get("turns") or []
    errors = obj.get("tool_errors") or []
    calls = obj.get("tool_calls") or 0
    crops = obj.get("crops")
    stop = obj.get("stop") or "answer"
    if not (isinstance(turns, list) and all(isinstance(t, str) for t in turns)):
        return None
    if not (isinstance(errors, list) and all(isinstance(e, str) for e in errors)):
        return None
    if not (isinstance(calls, int) and not isinstance(calls, bool) and calls >= 0) or not isinstance(stop, str):
        return None
    if crops is not None and not (
        isinstance(crops, list)
        and all(isinstance(c, list) and len(c) == 4 and all(_is_number(v) for v in c) for c in crops)
    ):
        return None
    return Trajectory(
        turns=list(turns),
        tool_calls=calls,
        crops=[[float(v) for v in c] for c in crops] if crops is not None else None,
        tool_errors=list(errors),
        stop=stop,
    )
