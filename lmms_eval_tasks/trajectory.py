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
text: its tool calls are counted but its crops are unknown (``crops=None``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ai4va_fg_dataset.zoom_tool import parse_tool_calls

TAG = "ai4va_fg_zoom_trajectory"
"""Key marking a JSON output as a zoom trajectory (its value is the format version, 1)."""


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
        A :class:`Trajectory`. Plain text gives one turn, ``tool_calls`` = the number of
        ``<tool_call>`` blocks in it (parsed with :func:`ai4va_fg_dataset.zoom_tool.parse_tool_calls`)
        and ``crops=None``.
    """
    if not isinstance(output, str):
        output = "" if output is None else str(output)
    stripped = output.strip()
    if stripped.startswith("{") and TAG in stripped:
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj.get(TAG):
            crops = obj.get("crops")
            return Trajectory(
                turns=[str(t) for t in obj.get("turns") or []],
                tool_calls=int(obj.get("tool_calls") or 0),
                crops=[list(map(float, c)) for c in crops] if crops is not None else None,
                tool_errors=[str(e) for e in obj.get("tool_errors") or []],
                stop=str(obj.get("stop") or "answer"),
            )
    return Trajectory(turns=[output], tool_calls=len(parse_tool_calls(output)), crops=None)
