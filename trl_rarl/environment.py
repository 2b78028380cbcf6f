"""The zoom tool environment for ``GRPOTrainer(environment_factory=...)`` (method.md sections 4-5).

TRL creates one :class:`ZoomEnvironment` per rollout, calls ``reset(**row)`` with the dataset row
(``image``, ``bboxes``, ``width``, ``height``, ...) and exposes the public method
``image_zoom_in_tool`` to the model as a tool. A call crops the page with
:class:`ai4va_fg_dataset.core.zoom_tool.ZoomTool` (boxes in the frame the model sees, Qwen2.5-VL's resized
image, mapped back to original pixels) and returns the crop as an image content block, which TRL
appends to the next turn and to the forward pass. Every call is recorded on the environment
(``env.tool.calls``) for the tool rewards and the zoom metrics.

The arguments TRL passes are checked by :func:`ai4va_fg_dataset.core.zoom_tool.validate_arguments`, the
validator behind the parser that ``format_reward`` and the tool rewards use: a call the format
reward calls malformed (a string ``bbox_2d`` such as ``"1289"``, a non-finite or absurd coordinate, a
non-string label) is malformed here too. It crops nothing, so it earns no tool reward, the model
gets an ``Error: ...`` message, and it is counted (:attr:`ZoomEnvironment.num_malformed`, and the
rejected calls of the zoom metrics). The tool method never raises.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from ai4va_fg_dataset.core.images import decode_image
from ai4va_fg_dataset.core.vision_frame import VisionFrame
from ai4va_fg_dataset.core.zoom_tool import DEFAULT_MAX_ZOOM_CALLS, ZoomResult, ZoomTool


class ZoomEnvironment:
    """One rollout's zoom tool (TRL ``environment_factory`` contract: ``reset`` + public tool methods).

    Args:
        frame: the processor's :class:`VisionFrame` (maps boxes from the model's frame; counts crop tokens).
        min_size, max_aspect_ratio, max_calls: passed to :class:`~ai4va_fg_dataset.core.zoom_tool.ZoomTool`.
    """

    def __init__(
        self,
        frame: VisionFrame | None = None,
        min_size: float = 28.0,
        max_aspect_ratio: float = 100.0,
        max_calls: int | None = DEFAULT_MAX_ZOOM_CALLS,
    ):
        self.frame = frame or VisionFrame()
        self.min_size = min_size
        self.max_aspect_ratio = max_aspect_ratio
        self.max_calls = max_calls
        self.tool: ZoomTool | None = None
        self.gt_boxes: list[tuple[float, float, float, float]] = []
        self.crop_tokens: list[int] = []
        self.page_size: tuple[int, int] = (0, 0)
        self.reset_error: str | None = None
        self.undelivered = 0

    def reset(self, **row) -> None:
        """Start a rollout on a dataset row.

        Uses ``row["image_full"]`` (information-gap runs) or ``row["image"]`` as the page to crop from, the size
        of ``row["image"]`` for the model's frame, and ``row["bboxes"]`` (GT, original pixels) for rewards. A row
        whose image cannot be read leaves the environment without a tool (``reset_error`` set; calls then return
        an error and the rollout scores zero tool reward) instead of crashing the run.
        """
        self.gt_boxes = [tuple(float(v) for v in b) for b in (row.get("bboxes") or [])]
        self.crop_tokens = []
        self.reset_error = None
        self.undelivered = 0
        try:
            seen = decode_image(row["image"])
            page = decode_image(row["image_full"]) if row.get("image_full") is not None else seen
        except (KeyError, TypeError, OSError) as exc:
            self.tool = None
            self.page_size = (0, 0)
            self.reset_error = f"no readable page image in row {row.get('id', '?')!r}: {exc}"
            return
        self.page_size = page.size
        self.tool = ZoomTool(
            page,
            model_frame_size=self.frame.resized(*seen.size),
            min_size=self.min_size,
            max_aspect_ratio=self.max_aspect_ratio,
            max_calls=self.max_calls,
        )
        return

    def image_zoom_in_tool(self, bbox_2d: list[float], label: str | None = None) -> list[dict] | str:
        """
        Zoom in on a region of the image by cropping it with a bounding box, and return the crop as a new image.
        Use it to look closely at characters, balloons or panels.

        Args:
            bbox_2d: The region to zoom in on as [x1, y1, x2, y2]: the top-left and bottom-right corners, in pixels of the image you see.
            label: Optional name of the object or region being zoomed in on.

        Returns:
            The cropped region as an image, or an error message.
        """
        if self.tool is None:
            return f"Error: {self.reset_error or 'the environment was not reset'}"
        result: ZoomResult = self.tool(bbox_2d, label)
        if not result.ok:
            return result.text()
        w, h = result.image.size
        self.crop_tokens.append(self.frame.visual_tokens(w, h))
        return [{"type": "image", "image": result.image}, {"type": "text", "text": result.text()}]

    def drop_undelivered(self, completion: Any) -> int:
        """Forget the calls whose result never reached the model, so rewards and metrics ignore them.

        TRL executes a turn's tool calls, then rolls back their tool messages when the results would
        push the completion past ``max_completion_length`` (``GRPOTrainer._tool_call_loop``); this
        environment has recorded those calls all the same. Every call that reaches
        :meth:`image_zoom_in_tool` leaves exactly one tool message of this environment's making (a crop:
        a list of content blocks; a rejection: a text starting with ``"Error: "``), in call order, and a
        rollback only removes trailing messages, so the first ``k`` records are the delivered ones, ``k``
        being the number of such messages in ``completion``. Messages TRL writes itself (a call with
        wrong argument names never reaches the method: ``"{'error': ...}"``) are not counted.

        Args:
            completion: the rollout's TRL conversational completion (list of messages); anything else
                (a plain-text completion, no tool loop) drops nothing.

        Returns:
            The number of calls dropped (also kept in :attr:`undelivered` for the metrics).
        """
        if self.tool is None or not isinstance(completion, list):
            return 0
        delivered = sum(
            1
            for m in completion
            if isinstance(m, dict) and m.get("role") == "tool" and _is_own_reply(m.get("content"))
        )
        dropped = self.tool.calls[delivered:]
        if dropped:
            del self.tool.calls[delivered:]
            ok_dropped = sum(1 for c in dropped if c.ok)
            if ok_dropped:
                del self.crop_tokens[len(self.crop_tokens) - ok_dropped :]
        self.undelivered += len(dropped)
        return len(dropped)

    @property
    def num_malformed(self) -> int:
        """Calls of this rollout whose arguments were malformed (rejected, no crop, no tool reward)."""
        return self.tool.num_malformed if self.tool is not None else 0

    @property
    def calls(self):
        """The :class:`~ai4va_fg_dataset.core.zoom_tool.ZoomCallRecord` list of this rollout (empty before a call)."""
        return self.tool.calls if self.tool is not None else []


def _is_own_reply(content: Any) -> bool:
    """Whether a tool message's content was made by :meth:`ZoomEnvironment.image_zoom_in_tool`."""
    return isinstance(content, list) or (isinstance(content, str) and content.startswith("Error: "))


def zoom_environment_factory(processing_class, args) -> callable:
    """An ``environment_factory`` for GRPOTrainer: ``() -> ZoomEnvironment`` configured from ``args``.

    Args:
        processing_class: the Qwen2.5-VL processor (for :class:`VisionFrame`).
        args: a :class:`~trl_rarl.config.RARLConfig` (``zoom_min_size``, ``zoom_max_aspect_ratio``,
            ``max_zoom_calls``).
    """
    frame = VisionFrame.from_processor(processing_class)

    def factory() -> ZoomEnvironment:
        return ZoomEnvironment(frame, args.zoom_min_size, args.zoom_max_aspect_ratio, args.max_zoom_calls)

    return factory


def downsample_to_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """Information gap (method.md section 5): shrink ``image`` to at most ``max_pixels`` pixels, keeping its aspect.

    Returns ``image`` itself when it is already small enough.
    """
    w, h = image.size
    if w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (w * h))
    return image.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BICUBIC)
