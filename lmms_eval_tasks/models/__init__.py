"""lmms-eval models shipped with AI4VA-FG, registered through the ``lmms_eval.models`` entry point.

``pyproject.toml``::

    [project.entry-points."lmms_eval.models"]
    ai4va_zoom = "lmms_eval_tasks.models:MANIFESTS"

makes ``lmms-eval --model ai4va_zoom`` load :class:`lmms_eval_tasks.models.zoom_agent.ZoomAgent`
(the multi-turn zoom agent of the tool-mode tasks; HF transformers and vLLM backends).
"""

from __future__ import annotations

from lmms_eval.models.registry_v2 import ModelManifest

MANIFESTS = [
    ModelManifest(
        model_id="ai4va_zoom",
        chat_class_path="lmms_eval_tasks.models.zoom_agent.ZoomAgent",
        aliases=("ai4va_fg_zoom_agent",),
    )
]
"""Entry-point payload: the model manifests lmms-eval registers (``ModelRegistryV2.load_entrypoint_manifests``)."""
