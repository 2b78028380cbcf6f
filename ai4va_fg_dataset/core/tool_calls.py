"""The one parser of ``<tool_call>`` blocks and the one validator of ``image_zoom_in_tool`` arguments.

Shared by the agentic evaluation (lmms-eval tool mode), the RARL environment and rewards, the
judge and the report (:func:`loads_bounded`), so every consumer reaches the same verdict on the same
text. Pure standard library; never raises on model output.

* :func:`parse_tool_calls` reads Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks from a completion and never raises: malformed JSON, a wrong tool name, wrong or missing
  argument names, a non-numeric box or an unclosed (truncated) block come back as
  :class:`ToolCallError` with a reason.
* :func:`validate_call` / :func:`validate_arguments` are the **one** validator of a call's content:
  the parser, :class:`ai4va_fg_dataset.core.zoom_tool.ZoomTool` and the format / tool rewards all
  reach the same verdict on the same arguments.
* :func:`loads_bounded` is the bounded JSON reader (depth, number length) used for every piece of
  model- or file-controlled JSON.

Limits (the parser cannot raise or stall; every limit below is a malformed call, not an exception):

=============================== ======================================================================
:data:`MAX_COMPLETION_CHARS`    a completion longer than this is not scanned: one error, no calls
:data:`MAX_CALLS_PER_TEXT`      blocks read per completion; one more error after that, rest ignored
:data:`MAX_CALL_CHARS`          characters inside one ``<tool_call>`` block (JSON is not decoded)
:data:`MAX_JSON_DEPTH`          nesting of ``[``/``{`` inside one block (a valid call has depth 3)
:data:`MAX_NUMBER_CHARS`        characters of one JSON number literal
:data:`MAX_COORDINATE`          ``|x|`` of each ``bbox_2d`` coordinate; NaN / infinities rejected
:data:`MAX_LABEL_CHARS`         length of the optional ``label``
=============================== ======================================================================

Parsing is linear in the completion length: each ``<tool_call>`` is matched with the first
``</tool_call>`` after it by one forward scan (an unclosed tag ends the scan), never by rescanning
from every unclosed tag.

The tool's JSON schema lives in ``tools/image_zoom_in_tool.yaml`` (:func:`.prompts.zoom_tool_schema`).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

TOOL_NAME = "image_zoom_in_tool"
"""Name of the zoom tool in the schema and in ``<tool_call>`` blocks."""

ALLOWED_ARGUMENTS = frozenset({"bbox_2d", "label"})
"""Argument names the tool accepts (``bbox_2d`` required, ``label`` optional)."""

OPEN_TAG = "<tool_call>"
"""Opening tag of a tool-call block (Hermes / Qwen2.5 format)."""

CLOSE_TAG = "</tool_call>"
"""Closing tag of a tool-call block."""

MAX_COMPLETION_CHARS = 4_194_304
"""Longest completion (characters) whose tool calls are read (4 Mi; a Qwen turn is ~10^4)."""

MAX_CALLS_PER_TEXT = 64
"""Most ``<tool_call>`` blocks read from one completion; a further block adds one error and ends the scan."""

MAX_CALL_CHARS = 4096
"""Longest text inside one ``<tool_call>`` block (a valid call is ~100 characters)."""

MAX_JSON_DEPTH = 8
"""Deepest ``[``/``{`` nesting decoded inside one block (``{"arguments": {"bbox_2d": [...]}}`` is 3)."""

MAX_NUMBER_CHARS = 40
"""Longest JSON number literal decoded as a number (longer ones are out of range)."""

MAX_COORDINATE = 1_000_000.0
"""Largest ``|coordinate|`` of a ``bbox_2d`` in the model's frame (pixels, or 0..1000); beyond is absurd."""

MAX_LABEL_CHARS = 512
"""Longest ``label`` argument."""

_OUT_OF_RANGE = f"bbox_2d has a coordinate out of range (|x| <= {MAX_COORDINATE:g})"
_MAX_ERROR_RAW = 256  # characters of the offending text kept in a ToolCallError
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)  # strings (skipped) and brackets; linear


class _OutOfRange:
    """A JSON number literal too long to be a coordinate (kept as text, never converted)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<number of {len(self.text)} characters>"


def _clip(text: str, limit: int = _MAX_ERROR_RAW) -> str:
    return text if len(text) <= limit else text[:limit] + f"...[{len(text) - limit} more characters]"


def safe_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (huge ints, deep nesting, broken ``__repr__``)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 200 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"<{type(value).__name__} of {len(value)} items>"
        inner = ", ".join(safe_repr(v, limit) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner})"
        return _clip(text, limit)
    if isinstance(value, dict):
        return f"<dict of {len(value)} keys>"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  (a hostile __repr__ must not turn a verdict into a crash)
        return f"<{type(value).__name__}>"
    return _clip(text, limit)


def _json_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` outside JSON strings; one linear pass."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _parse_int(text: str) -> int | _OutOfRange:
    return _OutOfRange(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _parse_float(text: str) -> float | _OutOfRange:
    return _OutOfRange(text) if len(text) > MAX_NUMBER_CHARS else float(text)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey("duplicate key in an object")
    return obj


def loads_bounded(
    text: str, *, max_chars: int = MAX_CALL_CHARS, max_depth: int = MAX_JSON_DEPTH, reject_duplicate_keys: bool = False
) -> tuple[bool, Any]:
    """Decode JSON text without the ways :func:`json.loads` can raise or stall on hostile input.

    Args:
        text: the JSON text.
        max_chars: longer text is refused undecoded.
        max_depth: deeper ``[``/``{`` nesting is refused undecoded (no ``RecursionError``).
        reject_duplicate_keys: an object with a repeated key is invalid (default: the last one wins,
            as in :func:`json.loads`).

    Returns:
        ``(True, value)``, or ``(False, reason)`` for anything that is not valid, bounded JSON: not a
        string, too long, too deeply nested, a syntax error. Number literals longer than
        :data:`MAX_NUMBER_CHARS` decode to an opaque out-of-range marker (never ``int()`` of
        thousands of digits, which Python refuses); ``NaN``/``Infinity`` decode to floats (rejected
        later as non-finite). Never raises.
    """
    if not isinstance(text, str):
        return False, f"JSON text is {type(text).__name__}, not a string"
    if len(text) > max_chars:
        return False, f"JSON text is {len(text)} characters (limit {max_chars})"
    depth = _json_depth(text)
    if depth > max_depth:
        return False, f"JSON nested {depth} levels deep (limit {max_depth})"
    hook = _no_duplicates if reject_duplicate_keys else None
    try:
        return True, json.loads(text, parse_int=_parse_int, parse_float=_parse_float, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        return False, f"malformed JSON: {exc.msg}"
    except _DuplicateKey as exc:
        return False, f"malformed JSON: {exc}"
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        return False, f"malformed JSON: {type(exc).__name__}"


@dataclass(frozen=True)
class ToolCall:
    """A well-formed ``image_zoom_in_tool`` call.

    Attributes:
        bbox_2d: ``(x1, y1, x2, y2)`` as the model wrote it, in the frame the model sees (pixels of
            the possibly resized image): four finite floats with ``|x| <=`` :data:`MAX_COORDINATE`.
            Not yet checked for order or placement: that is the executor's job (:class:`ZoomTool`).
        label: the optional ``label`` argument.
        raw: the text inside ``<tool_call></tool_call>``.
    """

    bbox_2d: tuple[float, float, float, float]
    label: str | None = None
    raw: str = ""
    name: str = TOOL_NAME


@dataclass(frozen=True)
class ToolCallError:
    """A ``<tool_call>`` block that is not a valid zoom call; ``reason`` says why (never raised).

    ``raw`` is the offending text, cut to a few hundred characters.
    """

    reason: str
    raw: str = ""


def validate_bbox(box: Any) -> tuple[float, float, float, float] | str:
    """Check a ``bbox_2d`` argument's type and range (not its order or placement).

    Accepted: a ``list`` or ``tuple`` of exactly 4 real numbers (``int``/``float``/numpy scalars;
    ``bool`` is not a number here), each finite and with ``|x| <=`` :data:`MAX_COORDINATE`.
    A string (even ``"[1, 2, 3, 4]"`` or ``"1289"``), a dict, ``None``, a numpy array or any other
    type is malformed.

    Returns:
        The four coordinates as floats, or a reason string (``"... is not a list of 4 numbers ..."``,
        ``"... has a non-finite value"``, ``"... out of range ..."``). Never raises.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        extra = f" (it has {len(box)} values)" if isinstance(box, (list, tuple)) else ""
        return f"bbox_2d {safe_repr(box)} is not a list of 4 numbers [x1, y1, x2, y2]{extra}"
    out: list[float] = []
    for v in box:
        if isinstance(v, _OutOfRange):
            return _OUT_OF_RANGE
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return f"bbox_2d {safe_repr(box)} is not a list of 4 numbers [x1, y1, x2, y2]"
        if isinstance(v, numbers.Integral) and abs(int(v)) > MAX_COORDINATE:
            return _OUT_OF_RANGE
        try:
            f = float(v)
        except (OverflowError, ValueError, TypeError):
            return _OUT_OF_RANGE
        if not math.isfinite(f):
            return f"bbox_2d {safe_repr(box)} has a non-finite value"
        if abs(f) > MAX_COORDINATE:
            return _OUT_OF_RANGE
        out.append(f)
    return tuple(out)  # type: ignore[return-value]


def validate_arguments(arguments: Any, raw: str = "") -> ToolCall | ToolCallError:
    """Check the ``arguments`` of a zoom call: an object (``dict``, or a JSON string of one).

    Accepted: ``bbox_2d`` (required, see :func:`validate_bbox`) and ``label`` (optional: a string of
    at most :data:`MAX_LABEL_CHARS` characters, or ``None``/``null``), and no other key.

    Returns:
        :class:`ToolCall`, or :class:`ToolCallError` naming the problem. Never raises.
    """
    if isinstance(arguments, str):
        ok, decoded = loads_bounded(arguments)
        if not ok:
            return ToolCallError(f"arguments are not valid JSON: {decoded}", _clip(raw))
        arguments = decoded
    if not isinstance(arguments, dict):
        return ToolCallError(f"arguments must be an object, got {type(arguments).__name__}", _clip(raw))
    keys = list(arguments)
    if not all(isinstance(k, str) for k in keys):
        return ToolCallError("argument names must be strings", _clip(raw))
    unknown = sorted(set(keys) - ALLOWED_ARGUMENTS)
    if unknown:
        shown = [_clip(k, 40) for k in unknown[:5]]
        return ToolCallError(f"unknown argument(s) {shown} (expected bbox_2d, label)", _clip(raw))
    if "bbox_2d" not in arguments:
        return ToolCallError("missing required argument 'bbox_2d'", _clip(raw))
    box = validate_bbox(arguments["bbox_2d"])
    if isinstance(box, str):
        return ToolCallError(box, _clip(raw))
    label = arguments.get("label")
    if label is not None and not isinstance(label, str):
        return ToolCallError(f"label {safe_repr(label)} is not a string", _clip(raw))
    if label is not None and len(label) > MAX_LABEL_CHARS:
        return ToolCallError(f"label is {len(label)} characters (limit {MAX_LABEL_CHARS})", _clip(raw))
    return ToolCall(box, label, raw)


def validate_call(name: Any, arguments: Any, raw: str = "") -> ToolCall | ToolCallError:
    """Check a decoded call: ``name`` must be ``image_zoom_in_tool``, ``arguments`` as :func:`validate_arguments`.

    Returns:
        :class:`ToolCall` or :class:`ToolCallError` naming the problem. Never raises.
    """
    if name != TOOL_NAME:
        return ToolCallError(f"unknown tool name {safe_repr(name, 60)} (expected {TOOL_NAME!r})", _clip(raw))
    return validate_arguments(arguments, raw)


def _parse_block(raw: str) -> ToolCall | ToolCallError:
    """One block's text (between the tags, stripped) -> call or error."""
    ok, obj = loads_bounded(raw)
    if not ok:
        return ToolCallError(obj if obj.startswith("malformed JSON") else f"tool call {obj}", _clip(raw))
    if not isinstance(obj, dict):
        return ToolCallError(f"tool call is {type(obj).__name__}, not an object", _clip(raw))
    extra = sorted(set(obj) - {"name", "arguments"})
    if extra:
        shown = [_clip(k, 40) for k in extra[:5]]
        return ToolCallError(f"unexpected key(s) {shown} (expected name, arguments)", _clip(raw))
    return validate_call(obj.get("name"), obj.get("arguments", {}), raw)


def parse_tool_calls(text: str) -> list[ToolCall | ToolCallError]:
    """All ``<tool_call>...</tool_call>`` blocks of ``text``, in order, parsed and validated.

    Args:
        text: completion text (one or several assistant turns).

    Returns:
        One entry per block: :class:`ToolCall` or :class:`ToolCallError` (malformed JSON, not an
        object, wrong name, wrong/missing arguments, bad ``bbox_2d``, a limit of the module
        docstring exceeded). A ``<tool_call>`` left unclosed (truncated completion) adds a final
        :class:`ToolCallError` and ends the scan; so does a block past :data:`MAX_CALLS_PER_TEXT`.
        A non-string or a text longer than :data:`MAX_COMPLETION_CHARS` gives one error. Linear in
        ``len(text)``; never raises.
    """
    if not isinstance(text, str):
        return [ToolCallError(f"completion is {type(text).__name__}, not text")]
    if len(text) > MAX_COMPLETION_CHARS:
        return [ToolCallError(f"completion is {len(text)} characters (limit {MAX_COMPLETION_CHARS}); "
                              "tool calls not read")]
    results: list[ToolCall | ToolCallError] = []
    pos = 0
    while True:
        start = text.find(OPEN_TAG, pos)
        if start < 0:
            break
        body = start + len(OPEN_TAG)
        end = text.find(CLOSE_TAG, body)
        if end < 0:  # no </tool_call> after this tag, so none after any later one: the scan ends
            results.append(ToolCallError("unclosed <tool_call> (truncated completion?)", _clip(text[start:].strip())))
            break
        if len(results) >= MAX_CALLS_PER_TEXT:
            results.append(ToolCallError(f"more than {MAX_CALLS_PER_TEXT} <tool_call> blocks; the rest are not read"))
            break
        raw = text[body:end]
        if len(raw) > MAX_CALL_CHARS:
            results.append(ToolCallError(f"tool call is {len(raw)} characters (limit {MAX_CALL_CHARS})", _clip(raw)))
        else:
            results.append(_parse_block(raw.strip()))
        pos = end + len(CLOSE_TAG)
    for call in results:
        if isinstance(call, ToolCallError):
            logger.debug("malformed tool call: %s", call.reason)
    return results


