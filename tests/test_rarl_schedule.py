"""Warm start / curriculum schedule and the curriculum sampler (trl_rarl/schedule.py), no model needed."""

from collections import Counter

import pytest

from trl_rarl.schedule import CurriculumSampler, RARLSchedule, Stage, parse_stages

TASKS = ["action_recognition", "depth_comparison", "character_identification"]


def test_parse_stages():
    stages = parse_stages(["action_recognition,depth_comparison:200", "character_identification:150", "all:50"], TASKS)
    assert stages == [
        Stage(("action_recognition", "depth_comparison"), 200),
        Stage(("character_identification",), 150),
        Stage(tuple(TASKS), 50),
    ]
    for bad, msg in [("action_recognition", "not 'task_a"), ("action_recognition:x", "not an integer"),
                     ("action_recognition:0", "> 0"), ("panel_reordering:3", "not among")]:
        with pytest.raises(ValueError, match=msg):
            parse_stages([bad], TASKS)


def test_phase_and_stage_by_step():
    s = RARLSchedule(16, tuple(parse_stages(["action_recognition:200", "depth_comparison:200", "all:200"], TASKS)))
    assert [s.phase(k) for k in (0, 15, 16, 500)] == ["warm_start", "warm_start", "full", "full"]
    assert [s.stage_index(k) for k in (0, 199, 200, 399, 400, 599, 10_000)] == [0, 0, 1, 1, 2, 2, 2]
    assert RARLSchedule().stage_index(7) == 0 and RARLSchedule().phase(0) == "full"


def test_curriculum_sampler_draws_each_chunk_from_its_stage():
    tasks = ["action_recognition"] * 5 + ["depth_comparison"] * 3 + ["character_identification"] * 4
    sched = RARLSchedule(0, tuple(parse_stages(["action_recognition:2", "depth_comparison:1", "all:1"], TASKS)))
    sampler = CurriculumSampler(tasks, sched, mini_repeat_count=2, batch_size=3, repeat_count=1, steps_per_chunk=1,
                                total_steps=4, seed=0)
    idx = list(sampler)
    assert len(idx) == len(sampler) == 4 * 3 * 2
    chunks = [idx[i:i + 6] for i in range(0, len(idx), 6)]
    for chunk in chunks:  # each prompt repeated num_generations times, consecutively
        assert chunk[0::2] == chunk[1::2]
    assert {tasks[i] for i in chunks[0] + chunks[1]} == {"action_recognition"}
    assert {tasks[i] for i in chunks[2]} == {"depth_comparison"}
    assert len(set(chunks[2])) == 3  # no repeat inside a chunk while the pool lasts
    assert set(chunks[3]) <= set(range(12))
    assert list(sampler) == idx  # deterministic: resumed runs replay the same order
    # two optimizer steps per chunk (num_iterations=2): chunk 1 covers steps 2-3 -> stage 1
    s2 = CurriculumSampler(tasks, sched, mini_repeat_count=1, batch_size=2, repeat_count=2, steps_per_chunk=2,
                           total_steps=4, seed=0)
    assert [s2.stage_of_chunk(c) for c in range(2)] == [0, 1]
    idx2 = list(s2)
    assert idx2[0:2] == idx2[2:4]  # the chunk is repeated for the second iteration
    assert Counter(tasks[i] for i in idx2[4:]) == Counter({"depth_comparison": 4})


def test_sampler_rejects_a_stage_without_rows():
    sched = RARLSchedule(0, (Stage(("character_identification",), 1),))
    with pytest.raises(ValueError, match="no rows"):
        CurriculumSampler(["action_recognition"], sched, 1, 1, 1, 1, 1)


def test_curriculum_sampler_from_a_trainer_is_shared_by_rarl_and_grpo():
    """:func:`curriculum_sampler` builds the sampler from a GRPO trainer's arguments (RARLTrainer and the vanilla
    GRPO recipe both call it); ``None`` without stages; a dataset without ``task`` is refused."""
    from types import SimpleNamespace

    from datasets import Dataset

    from trl_rarl.schedule import curriculum_max_steps, curriculum_sampler

    tasks = ["action_recognition"] * 3 + ["depth_comparison"] * 2
    ds = Dataset.from_dict({"task": tasks, "prompt": ["q"] * 5})
    args = SimpleNamespace(generation_batch_size=8, steps_per_generation=2, gradient_accumulation_steps=2,
                           max_steps=4, seed=3)
    fake = SimpleNamespace(args=args, num_generations=4, num_iterations=1, train_dataset=ds)
    sched = RARLSchedule(0, tuple(parse_stages(["action_recognition:2", "depth_comparison:2"], TASKS)))
    sampler = curriculum_sampler(fake, sched)
    assert (sampler.mini_repeat_count, sampler.batch_size, sampler.repeat_count) == (4, 2, 2)
    assert sampler.steps_per_chunk == 1 and sampler.num_chunks == 4 and sampler.seed == 3
    assert [sampler.stage_of_chunk(c) for c in range(4)] == [0, 0, 1, 1]
    assert curriculum_sampler(fake, RARLSchedule()) is None
    with pytest.raises(ValueError, match="'task' column"):
        curriculum_sampler(fake, sched, Dataset.from_dict({"prompt": ["q"]}))
    assert curriculum_max_steps(sched, -1) == 4 and curriculum_max_steps(sched, 1) == 1
    assert curriculum_max_steps(RARLSchedule(), -1) == -1
