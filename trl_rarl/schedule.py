"""Two-phase warm start and the sequential category curriculum of RARL (method.md section 4).

* Warm start: the first ``warm_start_steps`` optimizer steps reward only format and tool count; then
  the full reward (format + accuracy + correctness-conditioned tool count and IoU).
* Curriculum: stages of task groups run in order for a fixed number of optimizer steps each
  (paper: action & depth -> reordering -> character, up to 200 steps each, then 200 joint steps).

Both are pure functions of the optimizer step (``TrainerState.global_step``), so a run resumed from a
checkpoint is in the same phase and stage as the uninterrupted run. :class:`CurriculumSampler`
draws each generation batch from the current stage's tasks; :class:`ScheduleCallback` stores the stage in
checkpoints (checked on resume); ``RARLTrainer`` logs ``schedule/phase`` and ``schedule/stage`` every step.

The curriculum is shared by every RL recipe: ``RARLTrainer`` (``recipes/rarl.py``) and the vanilla GRPO
baseline (``recipes/grpo.py``, ``CurriculumGRPOTrainer``) both get their sampler from
:func:`curriculum_sampler` and their checkpointed stage from :class:`ScheduleCallback`, so the baseline runs the
paper's schedule ("sequential training across three categories followed by merged training, since starting
with all tasks simultaneously causes convergence instability", the thesis) with the same code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

logger = logging.getLogger(__name__)

WARM_START = "warm_start"
FULL = "full"


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: the tasks it samples and its length in optimizer steps."""

    tasks: tuple[str, ...]
    steps: int

    @property
    def name(self) -> str:
        """``"task_a+task_b"``."""
        return "+".join(self.tasks)


def parse_stages(specs: Sequence[str], all_tasks: Sequence[str]) -> list[Stage]:
    """Parse ``"task_a,task_b:steps"`` stage strings (``"all:steps"`` = every task of ``all_tasks``).

    Raises:
        ValueError: a spec without ``:steps``, a non-positive or non-integer step count, or a task not in
            ``all_tasks``; the message quotes the bad spec.
    """
    stages = []
    for spec in specs:
        tasks_part, sep, steps_part = str(spec).rpartition(":")
        if not sep or not tasks_part.strip():
            raise ValueError(f"curriculum stage {spec!r} is not 'task_a,task_b:steps'")
        try:
            steps = int(steps_part)
        except ValueError as exc:
            raise ValueError(f"curriculum stage {spec!r}: steps {steps_part!r} is not an integer") from exc
        if steps <= 0:
            raise ValueError(f"curriculum stage {spec!r}: steps must be > 0")
        names = [t.strip() for t in tasks_part.split(",") if t.strip()]
        if names == ["all"]:
            names = list(all_tasks)
        unknown = [t for t in names if t not in all_tasks]
        if unknown:
            raise ValueError(f"curriculum stage {spec!r}: task(s) {unknown} not among the train tasks {list(all_tasks)}")
        stages.append(Stage(tuple(names), steps))
    return stages


@dataclass(frozen=True)
class RARLSchedule:
    """Phase and curriculum stage as functions of the optimizer step (0-based ``global_step``).

    Args:
        warm_start_steps: steps ``0 .. warm_start_steps - 1`` are the warm-start phase.
        stages: curriculum stages in order (empty: no curriculum). Steps past the last stage stay in it.
    """

    warm_start_steps: int = 0
    stages: tuple[Stage, ...] = ()

    @classmethod
    def from_config(cls, args) -> RARLSchedule:
        """Build from a :class:`~trl_rarl.config.RARLConfig`."""
        stages = parse_stages(args.curriculum_stages, args.train_tasks) if args.curriculum_stages else []
        return cls(args.warm_start_steps, tuple(stages))

    def phase(self, step: int) -> str:
        """``"warm_start"`` for ``step < warm_start_steps``, else ``"full"``."""
        return WARM_START if step < self.warm_start_steps else FULL

    def stage_index(self, step: int) -> int:
        """Index of the curriculum stage at ``step`` (0 without a curriculum)."""
        end = 0
        for i, stage in enumerate(self.stages):
            end += stage.steps
            if step < end:
                return i
        return max(0, len(self.stages) - 1)


class CurriculumSampler(Sampler[int]):
    """GRPO sampler that draws each generation batch from the current curriculum stage's tasks.

    Same layout as TRL's ``RepeatSampler`` (each prompt repeated ``mini_repeat_count`` = num_generations
    times, each chunk of ``batch_size`` prompts repeated ``repeat_count`` times), but chunk ``c`` is
    drawn from the stage of optimizer step ``floor(c * steps_per_chunk)``. The order is a pure function of
    the seed, so every process draws the same indices and a resumed run (which replays and skips the
    consumed batches) sees the same data as an uninterrupted one.

    Args:
        tasks: the ``task`` column of the train dataset (one per row).
        schedule: the :class:`RARLSchedule` (its ``stages`` must be non-empty).
        mini_repeat_count, batch_size, repeat_count: as in ``trl.trainer.utils.RepeatSampler``.
        steps_per_chunk: optimizer steps one chunk covers
            (``num_iterations * steps_per_generation / gradient_accumulation_steps``).
        total_steps: optimizer steps of the run (sets ``len``).
        seed: shuffling seed.

    Raises:
        ValueError: a stage whose tasks have no rows in the dataset.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        schedule: RARLSchedule,
        mini_repeat_count: int,
        batch_size: int,
        repeat_count: int,
        steps_per_chunk: float,
        total_steps: int,
        seed: int = 0,
    ):
        self.schedule = schedule
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.steps_per_chunk = steps_per_chunk
        self.seed = seed
        self.pools: list[list[int]] = []
        for stage in schedule.stages:
            pool = [i for i, t in enumerate(tasks) if t in stage.tasks]
            if not pool:
                raise ValueError(f"curriculum stage {stage.name!r} has no rows in the train dataset")
            self.pools.append(pool)
        self.num_chunks = max(1, math.ceil(total_steps / steps_per_chunk))

    def __len__(self) -> int:
        return self.num_chunks * self.batch_size * self.repeat_count * self.mini_repeat_count

    def stage_of_chunk(self, chunk: int) -> int:
        """Curriculum stage index of generation chunk ``chunk``."""
        return self.schedule.stage_index(math.floor(chunk * self.steps_per_chunk))

    def __iter__(self) -> Iterator[int]:
        generators = [torch.Generator().manual_seed(self.seed + 1000 * i) for i in range(len(self.pools))]
        orders: list[list[int]] = [[] for _ in self.pools]
        for chunk in range(self.num_chunks):
            s = self.stage_of_chunk(chunk)
            picked = []
            for _ in range(self.batch_size):
                if not orders[s]:  # a fresh permutation of the stage's pool each time it runs out
                    perm = torch.randperm(len(self.pools[s]), generator=generators[s]).tolist()
                    orders[s] = [self.pools[s][j] for j in perm]
                picked.append(orders[s].pop())
            for _ in range(self.repeat_count):
                for index in picked:
                    for _ in range(self.mini_repeat_count):
                        yield index


def curriculum_sampler(trainer, schedule: RARLSchedule, dataset=None) -> CurriculumSampler | None:
    """The :class:`CurriculumSampler` of a ``trl.GRPOTrainer`` (or subclass) under ``schedule``, or ``None``
    without a curriculum (then the trainer's own sampler applies). Call it from ``_get_train_sampler``.

    The sampler's layout follows the trainer's arguments: ``num_generations`` repeats of each prompt, a
    generation batch of ``generation_batch_size / num_generations`` prompts reused ``num_iterations *
    steps_per_generation`` times, ``steps_per_chunk = num_iterations * steps_per_generation /
    gradient_accumulation_steps`` optimizer steps per chunk, ``max_steps`` steps in all, ``seed``.

    Args:
        trainer: the GRPO trainer (reads ``args``, ``num_generations``, ``num_iterations``, ``train_dataset``).
        schedule: the run's schedule.
        dataset: the train dataset (default ``trainer.train_dataset``); needs a ``task`` column.

    Raises:
        ValueError: a curriculum over a dataset without a ``task`` column, or a stage without rows.
    """
    if not schedule.stages:
        return None
    dataset = dataset if dataset is not None else trainer.train_dataset
    if "task" not in dataset.column_names:
        raise ValueError("a curriculum needs a 'task' column in the train dataset")
    args = trainer.args
    return CurriculumSampler(
        tasks=list(dataset["task"]),
        schedule=schedule,
        mini_repeat_count=trainer.num_generations,
        batch_size=args.generation_batch_size // trainer.num_generations,
        repeat_count=trainer.num_iterations * args.steps_per_generation,
        steps_per_chunk=trainer.num_iterations * args.steps_per_generation / args.gradient_accumulation_steps,
        total_steps=args.max_steps,
        seed=args.seed,
    )


def curriculum_max_steps(schedule: RARLSchedule, max_steps: int | None) -> int | None:
    """``max_steps`` when set (> 0), else the sum of the stages' steps (paper: 3 x 200 + 200 joint); unchanged
    without a curriculum."""
    if schedule.stages and (max_steps is None or max_steps <= 0):
        return sum(s.steps for s in schedule.stages)
    return max_steps


class ScheduleCallback(TrainerCallback, ExportableState):
    """Tracks the curriculum stage and keeps it in checkpoints (``TrainerState.stateful_callbacks``).

    On resume it reads the saved stage into ``resumed_stage`` and checks it against the stage recomputed
    from ``global_step``. Leave ``restore_callback_states_from_checkpoint`` off (the default): this
    callback restores itself from the trainer state.

    Args:
        schedule: the run's :class:`RARLSchedule`.
    """

    def __init__(self, schedule: RARLSchedule, stage: int = 0):
        self.schedule = schedule
        self.stage = stage
        self.resumed_stage: int | None = None

    def state(self) -> dict:
        """Checkpointed state (``TrainerState.stateful_callbacks``)."""
        return {"args": {"stage": self.stage}, "attributes": {}}

    def on_train_begin(self, args, state, control, **kwargs):
        expected = self.schedule.stage_index(state.global_step)
        callbacks = state.stateful_callbacks if isinstance(state.stateful_callbacks, dict) else {}
        saved = callbacks.get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        if state.global_step > 0 and isinstance(saved, dict):  # resumed: the checkpoint carries the saved stage
            self.resumed_stage = int(saved.get("args", {}).get("stage", expected))
            if self.resumed_stage != expected:
                logger.warning(
                    "resumed at step %d with saved curriculum stage %d, but the configured schedule gives stage %d "
                    "(curriculum_stages changed?); following the configuration",
                    state.global_step,
                    self.resumed_stage,
                    expected,
                )
        self.stage = expected

    def on_step_begin(self, args, state, control, **kwargs):
        self.stage = self.schedule.stage_index(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        # global_step now counts the finished step: a checkpoint saved next holds the stage to resume in.
        self.stage = self.schedule.stage_index(state.global_step)
