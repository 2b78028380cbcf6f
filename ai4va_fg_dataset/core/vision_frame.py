"""The frame a Qwen2/2.5-VL model sees: its image processor's resize rule, shared by evaluation and training.

Boxes in ``image_zoom_in_tool`` calls are in the resized image the model sees; the agentic
evaluation (``lmms_eval_tasks.models.zoom_agent``) and the RARL environment
(``trl_rarl.environment``) both map them back to page pixels with this frame and count a crop's
visual tokens with it (method.md sections 3-5). ``transformers`` is imported only when resizing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisionFrame:
    """How a Qwen2/2.5-VL image processor resizes images (``smart_resize``).

    Attributes:
        patch_size: ViT patch side in pixels (14).
        merge_size: spatial merge of patches into one visual token (2).
        min_pixels, max_pixels: pixel budget of a resized image.
    """

    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    @classmethod
    def from_processor(cls, processing_class) -> VisionFrame:
        """Read patch/merge size and the pixel budget from a processor or image processor."""
        ip = getattr(processing_class, "image_processor", processing_class)
        size = getattr(ip, "size", None) or {}
        min_pixels = size.get("shortest_edge", getattr(ip, "min_pixels", None)) or cls.min_pixels
        max_pixels = size.get("longest_edge", getattr(ip, "max_pixels", None)) or cls.max_pixels
        return cls(int(ip.patch_size), int(ip.merge_size), int(min_pixels), int(max_pixels))

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` the model sees for a ``width`` x ``height`` image (Qwen2-VL ``smart_resize``)."""
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        h, w = smart_resize(
            height, width, factor=self.patch_size * self.merge_size, min_pixels=self.min_pixels, max_pixels=self.max_pixels
        )
        return w, h

    def visual_tokens(self, width: int, height: int) -> int:
        """Number of LLM visual tokens of a ``width`` x ``height`` image after resizing."""
        w, h = self.resized(width, height)
        return (w // (self.patch_size * self.merge_size)) * (h // (self.patch_size * self.merge_size))
