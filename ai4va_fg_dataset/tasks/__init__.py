"""The seven AI4VA-FG task generators (method.md section 2) and the generation loop.

=========================== ================================================ ===================
task                        generator                                        needs
=========================== ================================================ ===================
panel_understanding         :class:`.panel_understanding.PanelUnderstandingGenerator`  panels + a VLM client
action_recognition          :class:`.action_recognition.ActionRecognitionGenerator`    character pose labels
depth_comparison            :class:`.depth_comparison.DepthComparisonGenerator`        ordinal depths
dialog_reordering           :class:`.dialog_reordering.DialogReorderingGenerator`      ordered balloon texts
panel_reordering            :class:`.panel_reordering.PanelReorderingGenerator`        ordered panels
character_identification    :class:`.character_identification.CharacterIdentificationGenerator`  identities
character_counting          :class:`.character_counting.CharacterCountingGenerator`    identities
=========================== ================================================ ===================
"""

from __future__ import annotations

from .base import TaskGenerator, default_generators, generate_samples, page_rng, sample_id

GENERATORS: dict[str, TaskGenerator] = default_generators()
"""One generator per task name; Panel Understanding has no VLM client here (it skips every page
with the reason "no VLM client configured (--pu-provider)"); bind one with
``PanelUnderstandingGenerator(client=make_client(...))``."""

__all__ = ["GENERATORS", "TaskGenerator", "default_generators", "generate_samples", "page_rng", "sample_id"]
