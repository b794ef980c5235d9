import math

import numpy as np
import pytest

from ogi.envs.instructions import (
    SPLITS,
    GoTo,
    Instruction,
    Move,
    Tracker,
    obstacle_distance,
    parse_instruction,
    sample_instruction,
    sample_layout,
)
from ogi.envs.layout import STOP, Layout, Obstacle, SceneObject, nearest_subgoal, subgoal_command
from ogi.envs.oracle import Oracle, simulate_kinematic

ARENA = Layout(
    objects=(
        SceneObject("red", "box", (3.0, 0.0)),
        SceneObject("blue", "ball", (0.0, 2.5)),
        SceneObject("green", "cone", (-2.0, -2.0)),
    )
)
STAND = nearest_subgoal(0.0, 0.0, 0.0)


def first_command(text: str, layout: Layout = ARENA) -> tuple[float, float, float]:
    instruction = parse_instruction(text, layout)
    return subgoal_command(Oracle(instruction, layout).act(Tracker(instruction, layout, layout.start), 0.0))


@pytest.mark.parametrize("split", SPLITS)
def test_kinematic_oracle_succeeds_on_sampled_instructions(split):
    rng = np.random.default_rng({"train": 11, "heldout": 12}[split])
    reasons = []
    for seed in range(100):
        layout = sample_layout(rng)
        tracker, decisions = simulate_kinematic(sample_instruction(rng, layout, split), layout, seed=seed)
        assert tracker.done and decisions >= 1
        reasons.append(tracker.reason)
    assert reasons.count("success") >= 90, sorted(set(reasons))


def test_oracle_answers_only_codebook_indices_or_stop_from_any_pose():
    rng = np.random.default_rng(5)
    answers = set()
    for _ in range(30):
        layout = sample_layout(rng)
        instruction = sample_instruction(rng, layout, str(rng.choice(SPLITS)))
        oracle = Oracle(instruction, layout)
        tracker = Tracker(instruction, layout, layout.start)
        for k in range(15):  # poses anywhere, obstacles and objects included
            pose = (*rng.uniform(-4.0, 4.0, size=2), rng.uniform(-math.pi, math.pi))
            tracker.update(pose, float(rng.uniform(0.0, 1.0)), False, 0.2 * (k + 1))
            answer = oracle.act(tracker, 0.2 * (k + 1))
            assert isinstance(answer, int) and 0 <= answer <= STOP
            answers.add(answer)
    assert len(answers) > 5


def test_a_lone_stop_stands_then_says_stop():
    instruction = parse_instruction("stop", ARENA)
    oracle = Oracle(instruction, ARENA)
    tracker = Tracker(instruction, ARENA, ARENA.start)
    assert oracle.act(tracker, 0.0) == STAND
    for k in range(1, 61):
        tracker.update(ARENA.start, 0.0, False, k * 0.02)
    assert oracle.act(tracker, 1.2) == STOP
    played, decisions = simulate_kinematic(instruction, ARENA)
    assert played.success and decisions == 7  # six stands of 0.2 s, then STOP


def test_moves_walk_the_way_the_words_say():
    vx, vy, yaw_rate = first_command("walk backward 2 meters")
    assert vx < 0.0 and vy == 0.0 and yaw_rate == 0.0
    vx, vy, yaw_rate = first_command("sidestep left 1 meter")
    assert vx == 0.0 and vy > 0.0 and yaw_rate == 0.0


def test_turns_turn_the_way_the_words_say():
    assert first_command("turn left")[2] > 0.0 and first_command("turn left")[:2] == (0.0, 0.0)
    assert first_command("turn right 45 degrees")[2] < 0.0


@pytest.mark.parametrize(("side", "sign"), [("left", -1.0), ("right", 1.0)])
def test_around_goes_by_the_named_side(side, sign):
    tracker, _ = simulate_kinematic(parse_instruction(f"go around the red box on the {side}", ARENA), ARENA)
    assert tracker.success and sign * tracker.swept >= math.radians(150)


def test_goto_in_an_otherwise_empty_arena_walks_straight_at_the_object():
    alone = Layout(objects=(SceneObject("red", "box", (-2.5, 0.9)),), start=(0.0, 0.0, math.atan2(0.9, -2.5)))
    assert first_command("go to the box", alone) == (0.8, 0.0, 0.0)
    tracker, _ = simulate_kinematic(parse_instruction("go to the box", alone), alone)
    assert tracker.success


def test_goto_detours_around_an_obstacle_on_the_straight_line():
    block = Obstacle((1.6, 0.05), (0.3, 0.35), 0.2)
    layout = Layout(objects=ARENA.objects, obstacles=(block,))
    assert obstacle_distance((1.6, 0.0), block) < 0.0  # walked straight, the robot would go through the block
    assert first_command("go to the red box", ARENA)[2] == 0.0
    assert first_command("go to the red box", layout)[2] != 0.0  # it turns off the straight line at once
    for seed in range(3):
        tracker, _ = simulate_kinematic(parse_instruction("go to the red box", layout), layout, seed=seed)
        # a fall (within FALL_OBSTACLE_M of the block's edge) would have ended the episode as "fell"
        assert tracker.success, tracker.reason


def test_oracle_and_simulation_reject_bad_arguments():
    with pytest.raises(ValueError, match="names object 7"):
        Oracle(Instruction("go to it", (GoTo(7),), "train", "goto"), ARENA)
    instruction = parse_instruction("stop", ARENA)
    with pytest.raises(ValueError, match="lag_s"):
        simulate_kinematic(instruction, ARENA, lag_s=0.0)
    with pytest.raises(ValueError, match="noise"):
        simulate_kinematic(instruction, ARENA, noise=-0.1)
    with pytest.raises(ValueError, match="max_s"):
        simulate_kinematic(instruction, ARENA, max_s=0.0)


def test_a_labelling_oracle_remembers_what_was_done_not_what_it_said():
    layout = Layout(objects=(SceneObject("red", "box", (3.0, 3.0)),))
    instruction = Instruction("walk forward one meter", (Move(1.0, 0.0),), "train", "move")
    tracker = Tracker(instruction, layout, (0.0, 0.0, 0.0))
    tracker.update((0.9, 0.0, 0.0), 0.0, False, 0.02)
    oracle = Oracle(instruction, layout)
    stand = nearest_subgoal(0.0, 0.0, 0.0)
    assert oracle.act(tracker, 0.2) == stand
    oracle.observe(0, nearest_subgoal(0.4, 0.0, 0.0))  # another decider walked on instead
    assert oracle.act(tracker, 0.4) == stand
    oracle.observe(0, stand)
    assert oracle.act(tracker, 0.6) == STOP
