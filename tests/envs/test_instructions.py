import math

import numpy as np
import pytest

from ogi.envs.instructions import (
    AROUND_RADIUS_M,
    HELDOUT_COMPOSITIONS,
    HELDOUT_TARGETS,
    SPLITS,
    TEMPLATES,
    TRAIN_COMPOSITIONS,
    Around,
    GoTo,
    Instruction,
    Move,
    Stop,
    Tracker,
    Turn,
    obstacle_distance,
    parse_instruction,
    pretraining_documents,
    sample_instruction,
    sample_layout,
)
from ogi.envs.layout import ARENA_HALF_M, SHAPES, Layout, Obstacle, SceneObject

HELDOUT_PATTERNS = {t.pattern for t in TEMPLATES if t.split == "heldout"}
# two boxes, so "the box" names neither; the red ball is a held-out target
ARENA = Layout(
    objects=(
        SceneObject("red", "box", (2.0, 0.0)),
        SceneObject("blue", "box", (0.0, 2.5)),
        SceneObject("red", "ball", (-2.0, -1.0)),
        SceneObject("green", "cone", (1.5, -2.5)),
    ),
    obstacles=(Obstacle((-1.5, 1.5), (0.2, 0.3), 0.4),),
)


@pytest.fixture(scope="module")
def sampled() -> dict[str, list[tuple[Layout, Instruction]]]:
    """150 (layout, instruction) pairs per split, over three seeds."""
    out: dict[str, list[tuple[Layout, Instruction]]] = {split: [] for split in SPLITS}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for _ in range(50):
            layout = sample_layout(rng)
            for split in SPLITS:
                out[split].append((layout, sample_instruction(rng, layout, split)))
    return out


def judge(instruction: Instruction, layout: Layout, poses, speed=0.0, time_limit_s=60.0, dt_s=0.02) -> Tracker:
    """A tracker fed `poses` one per `dt_s` step (constant `speed`), not yet finished unless it ended itself."""
    tracker = Tracker(instruction, layout, layout.start, time_limit_s)
    for k, pose in enumerate(poses, start=1):
        tracker.update(pose, speed, False, k * dt_s)
    return tracker


def one(*stages) -> Instruction:
    return Instruction("hand-made", tuple(stages), "train", "+".join(type(s).__name__.lower() for s in stages))


def line(a, b, n: int):
    """n poses from pose a to pose b, linearly, a excluded."""
    return [tuple(a[i] + (b[i] - a[i]) * k / n for i in range(3)) for k in range(1, n + 1)]


# ---------------------------------------------------------------------------------------------------- layouts


def test_sample_layout_respects_spacing_and_bounds():
    rng = np.random.default_rng(0)
    bound = ARENA_HALF_M - 0.4
    for _ in range(60):
        layout = sample_layout(rng)
        assert 3 <= len(layout.objects) <= 5 and len(layout.obstacles) <= 2
        assert len({(o.colour, o.shape) for o in layout.objects}) == len(layout.objects)
        assert all(sum(o.shape == s for o in layout.objects) <= 2 for s in SHAPES)
        assert layout.start[:2] == (0.0, 0.0) and -math.pi <= layout.start[2] <= math.pi
        for k, o in enumerate(layout.objects):
            assert 1.5 <= math.hypot(*o.xy) <= 3.6 and max(map(abs, o.xy)) <= bound
            assert all(math.dist(o.xy, p.xy) >= 1.0 for p in layout.objects[:k])
            assert all(obstacle_distance(o.xy, b) >= 1.0 for b in layout.obstacles)
        for k, b in enumerate(layout.obstacles):
            reach = math.hypot(*b.half_size)
            assert all(0.15 <= h <= 0.35 for h in b.half_size)
            assert max(map(abs, b.xy)) + reach <= bound
            assert obstacle_distance((0.0, 0.0), b) >= 0.8
            assert all(math.dist(b.xy, c.xy) - reach - math.hypot(*c.half_size) >= 1.0 for c in layout.obstacles[:k])


def test_sample_layout_rejects_bad_ranges():
    rng = np.random.default_rng(0)
    for kwargs in ({"n_objects": (0, 2)}, {"n_objects": (4, 3)}, {"n_objects": (3, 9)}, {"n_obstacles": (0, 9)}):
        with pytest.raises(ValueError, match="n_ob"):
            sample_layout(rng, **kwargs)


def test_obstacle_distance_is_signed_edge_distance():
    block = Obstacle((1.0, 0.0), (0.5, 0.2), math.pi / 2)  # long side along y after the quarter turn
    assert obstacle_distance((1.0, 1.0), block) == pytest.approx(0.5)
    assert obstacle_distance((2.0, 0.0), block) == pytest.approx(0.8)
    assert obstacle_distance((1.0, 0.0), block) == pytest.approx(-0.2)


# ---------------------------------------------------------------------------------------------------- splits


def test_splits_never_share_a_text(sampled):
    train = {i.text for _, i in sampled["train"]}
    heldout = {i.text for _, i in sampled["heldout"]}
    assert len(train) > 100 and len(heldout) > 100
    assert not train & heldout


def test_training_instructions_use_only_training_material(sampled):
    for layout, i in sampled["train"]:
        kinds = tuple(i.kind.split("+"))
        assert i.split == "train" and i.novelty == ""
        assert len(kinds) == 1 or kinds in TRAIN_COMPOSITIONS
        assert not HELDOUT_PATTERNS & set(i.templates)
        assert all((layout.objects[k].colour, layout.objects[k].shape) not in HELDOUT_TARGETS for k in i.targets)


def test_heldout_instructions_have_their_novelty(sampled):
    novelties = set()
    for layout, i in sampled["heldout"]:
        novelties.add(i.novelty)
        if i.novelty == "template":
            assert HELDOUT_PATTERNS & set(i.templates)
        elif i.novelty == "target":
            assert any((layout.objects[k].colour, layout.objects[k].shape) in HELDOUT_TARGETS for k in i.targets)
        else:
            assert i.novelty == "composition" and tuple(i.kind.split("+")) in HELDOUT_COMPOSITIONS
    assert novelties == {"template", "target", "composition"}


def test_pretraining_covers_the_heldout_vocabulary(sampled):
    documents = pretraining_documents(2000, seed=0)
    assert documents == pretraining_documents(2000, seed=0) != pretraining_documents(2000, seed=1)
    vocabulary = {word for document in documents for word in document.split()}
    for _, i in sampled["heldout"]:
        assert set(i.text.split()) <= vocabulary, i.text


def test_sample_instruction_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split"):
        sample_instruction(np.random.default_rng(0), ARENA, "test")


def test_stages_and_instructions_check_their_fields():
    with pytest.raises(ValueError, match="side"):
        Around(0, "up")
    with pytest.raises(ValueError, match="stages"):
        Instruction("", (), "train", "")
    with pytest.raises(ValueError, match="split"):
        Instruction("stop", (Stop(),), "test", "stop")


# ---------------------------------------------------------------------------------------------------- parsing


def test_parse_round_trips_sampled_instructions(sampled):
    for split in SPLITS:
        for layout, i in sampled[split]:
            parsed = parse_instruction(f"  {i.text.upper()} . ", layout)
            assert parsed.stages == i.stages, i.text
            assert (parsed.split, parsed.novelty, parsed.kind, parsed.text) == (i.split, i.novelty, i.kind, i.text)


def test_parse_reads_numbers_connectives_and_names():
    digits = parse_instruction("Walk forward 2 meters and then turn right 45 degrees.", ARENA)
    words = parse_instruction("walk forward two meters then turn right forty five degrees", ARENA)
    assert digits.stages == words.stages == (Move(2.0, 0.0), Turn(-math.pi / 4))
    assert parse_instruction("step to the left 1 meter and stop", ARENA).stages == (Move(0.0, 1.0), Stop())
    assert parse_instruction("turn around", ARENA).stages == (Turn(math.pi, either_way=True),)
    assert parse_instruction("turn left 360 degrees", ARENA).stages == (Turn(2 * math.pi),)
    assert parse_instruction("go to the green one", ARENA).stages == (GoTo(3),)
    assert parse_instruction("pass the cone on the left", ARENA).stages == (Around(3, "left"),)


def test_parse_assigns_the_split_by_what_is_novel():
    assert parse_instruction("go to the blue box", ARENA).split == "train"
    assert parse_instruction("approach the blue box", ARENA).novelty == "template"
    assert parse_instruction("go to the ball", ARENA).novelty == "target"  # the red ball
    composition = parse_instruction("go to the blue box then step back 1 meter", ARENA)
    assert (composition.split, composition.novelty, composition.kind) == ("heldout", "composition", "goto+move")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dance a little", "cannot read 'dance a little'.*walk forward two meters"),
        ("walk forward", "cannot read"),
        ("", "empty"),
        ("go to the purple cone", "it has: red box, blue box, red ball, green cone"),
        ("go to the box", "picks out no single object"),
        ("stop at the green cone then turn left", "can only end"),
        ("walk forward 0 meters", "distance must be positive"),
        ("turn left 400 degrees", "angle"),
        ("stop then stop then stop then stop then stop", "at most 4"),
    ],
)
def test_parse_rejects_bad_text_naming_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        parse_instruction(text, ARENA)


# ---------------------------------------------------------------------------------------------------- judging

ORIGIN = (0.0, 0.0, 0.0)
OPEN = Layout(objects=(SceneObject("green", "ball", (3.0, 0.0)),))


def test_move_succeeds_within_tolerance_and_misses_short_of_it():
    arrived = judge(one(Move(2.0, 0.0)), OPEN, line(ORIGIN, (1.8, 0.1, 0.0), 50))
    arrived.finish(1.0)
    assert arrived.success and arrived.reason == "success"
    short = judge(one(Move(2.0, 0.0)), OPEN, line(ORIGIN, (1.0, 0.0, 0.0), 50))
    short.finish(1.0)
    assert not short.success and short.reason == "missed"


def test_move_is_measured_in_the_start_frame():
    facing_left = Layout(objects=OPEN.objects, start=(0.0, 0.0, math.pi / 2))
    tracker = judge(one(Move(0.0, -1.0)), facing_left, line(facing_left.start, (1.0, 0.0, math.pi / 2), 30))
    tracker.finish(1.0)  # sidestep right while facing +y is toward +x
    assert tracker.success


def test_fell_ends_at_once_and_later_updates_change_nothing():
    tracker = Tracker(one(Move(1.0, 0.0)), OPEN, ORIGIN)
    tracker.update((0.2, 0.0, 0.0), 0.5, True, 0.02)
    assert tracker.done and tracker.reason == "fell"
    tracker.update((1.0, 0.0, 0.0), 0.0, False, 0.04)
    tracker.finish(0.04)
    assert tracker.reason == "fell" and tracker.pose == (0.2, 0.0, 0.0)


def test_timeout_wins_over_arrival():
    tracker = judge(one(Move(1.0, 0.0)), OPEN, line(ORIGIN, (1.0, 0.0, 0.0), 10), time_limit_s=0.1)
    assert tracker.done and tracker.reason == "timeout" and not tracker.success


def test_unfinished_stages_are_incomplete():
    instruction = one(Move(1.0, 0.0), Turn(math.pi / 2), Stop())
    tracker = judge(instruction, OPEN, line(ORIGIN, (1.0, 0.0, 0.0), 20))
    assert tracker.stage == 1 and tracker.turn_targets == (pytest.approx(math.pi / 2),)
    tracker.finish(1.0)
    assert tracker.reason == "incomplete"


@pytest.mark.parametrize(
    ("turn", "final_yaw", "success"),
    [
        (Turn(math.pi / 2), 1.45, True),
        (Turn(math.pi / 2), -1.45, False),
        (Turn(-math.pi / 4), -0.8, True),
        (Turn(math.pi, either_way=True), -3.0, True),
        (Turn(math.pi, either_way=True), 3.0, True),
        (Turn(math.pi), -3.0, False),
    ],
)
def test_turn_direction_and_either_way(turn, final_yaw, success):
    tracker = judge(one(turn), OPEN, line(ORIGIN, (0.0, 0.0, final_yaw), 60))
    tracker.finish(2.0)
    assert tracker.success == success and tracker.reason == ("success" if success else "missed")


def test_turn_is_counted_cumulatively():
    spin = [(0.0, 0.0, 2 * math.pi * k / 100) for k in range(1, 101)]  # yaw wraps, the count does not
    tracker = judge(one(Turn(2 * math.pi)), OPEN, spin)
    assert tracker.turned == pytest.approx(2 * math.pi)
    tracker.finish(2.0)
    assert tracker.success
    not_a_quarter = judge(one(Turn(math.pi / 2)), OPEN, [*spin, *line((0, 0, 0), (0, 0, math.pi / 2), 20)])
    not_a_quarter.finish(3.0)
    assert not_a_quarter.reason == "missed"


def test_a_later_stage_is_framed_where_the_earlier_should_have_ended():
    tracker = judge(one(Turn(math.pi / 2), Move(1.0, 0.0)), OPEN, line(ORIGIN, (0.0, 0.0, 1.3), 40))
    assert tracker.stage == 1 and tracker.frame == pytest.approx((0.0, 0.0, math.pi / 2))
    assert tracker.turn_targets == () and tracker.stage_xy == (0.0, 0.0) and tracker.stage_t > 0.0


def test_goto_needs_reach_and_a_stop_when_last():
    poses = line(ORIGIN, (2.3, 0.0, 0.0), 40)
    standing = judge(one(GoTo(0)), OPEN, poses, speed=0.05)
    standing.finish(1.0)
    assert standing.success
    walking = judge(one(GoTo(0)), OPEN, poses, speed=0.5)
    walking.finish(1.0)
    assert walking.reason == "missed"
    not_there = judge(one(GoTo(0)), OPEN, line(ORIGIN, (1.5, 0.0, 0.0), 40), speed=0.0)
    not_there.finish(1.0)
    assert not_there.reason == "missed"
    passing = judge(one(GoTo(0), Turn(math.pi / 2)), OPEN, poses, speed=0.5)
    assert passing.stage == 1  # not last: reach alone is enough


def arc(centre, radius, from_rad, to_rad, n=80):
    return [
        (
            centre[0] + radius * math.cos(from_rad + (to_rad - from_rad) * k / n),
            centre[1] + radius * math.sin(from_rad + (to_rad - from_rad) * k / n),
            0.0,
        )
        for k in range(n + 1)
    ]


def test_around_counts_the_sweep_in_the_side_s_sense():
    centre = OPEN.objects[0].xy
    walk_in = line(ORIGIN, (centre[0] - AROUND_RADIUS_M, 0.0, 0.0), 20)
    counter_clockwise = walk_in + arc(centre, AROUND_RADIUS_M, math.pi, math.pi + math.radians(160))
    for side, success in (("right", True), (None, True), ("left", False)):
        tracker = judge(one(Around(0, side)), OPEN, counter_clockwise)
        assert tracker.swept == pytest.approx(math.radians(160), abs=0.05)
        tracker.finish(3.0)
        assert tracker.success == success, side
    short = judge(one(Around(0, "right")), OPEN, walk_in + arc(centre, AROUND_RADIUS_M, math.pi, math.pi + 2.0))
    short.finish(3.0)
    assert short.reason == "missed"


def test_around_too_close_ends_at_once():
    centre = OPEN.objects[0].xy
    tracker = judge(one(Around(0)), OPEN, line(ORIGIN, (centre[0] - 0.4, 0.0, 0.0), 20))
    assert tracker.done and tracker.reason == "too_close"


def test_stop_holds_for_a_second_in_place():
    still = judge(one(Stop()), OPEN, [(0.01, 0.0, 0.0)] * 55)
    still.finish(1.1)
    assert still.success
    early = judge(one(Stop()), OPEN, [(0.0, 0.0, 0.0)] * 20)
    early.finish(0.4)
    assert early.reason == "missed"
    drifting = judge(one(Stop()), OPEN, line(ORIGIN, (0.5, 0.0, 0.0), 20))
    assert drifting.done and drifting.reason == "moved"
