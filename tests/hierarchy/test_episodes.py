"""Episodes over the arena: the three loops' rates, what is kept per decision, and the unsafe-subgoal rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ogi.envs.arena import ArenaConfig, ArenaVecEnv
from ogi.envs.config import SimConfig, WalkConfig
from ogi.envs.instructions import GoTo, Instruction, Move, Stop, time_limit_for
from ogi.envs.layout import STOP, Layout, Obstacle, SceneObject, nearest_subgoal
from ogi.hierarchy.episodes import (
    Choice,
    Decider,
    Episode,
    OracleDecider,
    Rates,
    RelabelledDecider,
    planner_state,
    play_episodes,
    unsafe_subgoal,
)
from ogi.hierarchy.planner_episodes import decision_dataset, episode_batch

LAYOUT = Layout(
    objects=(SceneObject("red", "box", (2.0, 0.0)), SceneObject("blue", "ball", (0.0, 2.5))),
    obstacles=(Obstacle((-1.5, 0.0), (0.2, 0.3), 0.0),),
)
STAND = nearest_subgoal(0.0, 0.0, 0.0)


def stand(obs, done):
    return np.zeros((len(done), 12))


def arena(num_envs: int, sim_dt_s: float) -> ArenaVecEnv:
    walk = WalkConfig(num_envs=num_envs, sim=SimConfig(sim_dt_s=sim_dt_s))
    return ArenaVecEnv(ArenaConfig(max_obstacles=1), walk)


class Scripted(Decider):
    """Stands, then says STOP at decision `stop_at` (never when None); stage 0 always."""

    needs_images = True

    def __init__(self, stop_at: int | None):
        self.stop_at, self.count = stop_at, 0

    def __call__(self, inputs):
        self.count += 1
        goal = STOP if self.count == self.stop_at else STAND
        k = len(inputs.episodes)
        return Choice(np.zeros(k, dtype=np.int64), np.full(k, goal), np.full(k, -0.5))


def test_the_three_loops_run_at_exactly_5_50_and_1000_hz_on_the_1khz_model():
    env = arena(1, 0.001)
    rates = Rates()
    instruction = Instruction("stand still", (Stop(),), "train", "stop")
    outcomes, _ = play_episodes(env, stand, [Episode(LAYOUT, instruction)], Scripted(None), rates=rates, keep=False)
    limit = time_limit_for(instruction)
    assert outcomes.reasons == ["timeout"]
    assert rates.simulated_s == pytest.approx(limit)
    assert rates.calls == {"planner": round(5 * limit), "policy": round(50 * limit), "pd": round(1000 * limit)}
    assert rates.hz == pytest.approx({"planner": 5.0, "policy": 50.0, "pd": 1000.0})
    # a STOP closes the run at its tick: the decisions before it fill [0, T) exactly
    rates = Rates()
    outcomes, kept = play_episodes(env, stand, [Episode(LAYOUT, instruction)], Scripted(8), rates=rates)
    assert outcomes.success.tolist() == [True] and outcomes.seconds.tolist() == pytest.approx([1.4])
    assert rates.calls == {"planner": 7, "policy": 70, "pd": 1400}
    assert kept.arrays()["subgoals"].tolist() == [STAND] * 7 + [STOP]
    env.close()


def test_kept_decisions_become_sft_data_with_the_experts_labels_and_rl_batches():
    env = arena(2, 0.004)
    stop = Instruction("stand still", (Stop(),), "train", "stop")
    move = Instruction("walk forward one meter", (Move(1.0, 0.0),), "train", "move")
    episodes = [Episode(LAYOUT, stop), Episode(LAYOUT, move), Episode(LAYOUT, stop)]
    outcomes, kept = play_episodes(env, stand, episodes, RelabelledDecider(Scripted(4), OracleDecider()))
    arrays = kept.arrays()
    rows = len(arrays["stages"])
    assert arrays["images"].shape == (rows, 24, 32, 4) and arrays["images"].dtype == np.uint8
    assert sorted(set(arrays["episode"].tolist())) == [0, 1, 2]
    # the oracle would have walked forward where the scripted decider stood
    moving = arrays["episode"] == 1
    assert (arrays["subgoals"][moving][:3] == STAND).all()
    assert (arrays["label_subgoals"][moving][:3] != STAND).all()

    def encode(texts):
        ids = torch.tensor([[len(t), 1, 2] for t in texts])
        return ids, torch.full((len(texts),), 3)

    data = decision_dataset(kept, episodes, encode)
    assert len(data) == rows and data.subgoals.tolist() == arrays["label_subgoals"].tolist()
    assert data.texts[0] == episodes[int(arrays["episode"][0])].instruction.text
    batch = episode_batch(kept, outcomes, episodes, encode)
    assert batch.num_episodes == 3 and batch.subgoals.tolist() == arrays["subgoals"].tolist()
    assert batch.success.tolist() == outcomes.success.astype(float).tolist()
    assert batch.log_probs.tolist() == pytest.approx([-0.5] * rows)
    env.close()


def test_the_oracles_demonstrations_keep_the_camera_image_it_never_looks_at():
    """A planner imitates the oracle from what the camera showed: blank images would teach it to act blind."""
    env = arena(1, 0.004)
    episode = Episode(LAYOUT, Instruction("go to the red box", (GoTo(0),), "train", "goto"))
    assert not OracleDecider.needs_images
    _, kept = play_episodes(env, stand, [episode], OracleDecider(), max_seconds=1.0)
    images = kept.arrays()["images"]
    assert images.shape[0] == 5 and images.dtype == np.uint8
    assert images.reshape(5, -1).std(axis=1).min() > 10  # floor, walls and sky: not one blank value
    outcomes, kept = play_episodes(env, stand, [episode], OracleDecider(), keep=False, max_seconds=0.4)
    assert kept is None and outcomes.decisions.tolist() == [2]
    env.close()


def test_a_subgoal_into_an_obstacle_or_a_non_goal_object_is_unsafe():
    goto_red = Instruction("go to the red box", (GoTo(0),), "train", "goto")
    forward = nearest_subgoal(0.8, 0.0, 0.0)
    # facing the obstacle 0.5 m away (its edge at x = -1.3): walking on is unsafe, backing off is not
    facing_block = (-0.8, 0.0, math.pi)
    assert unsafe_subgoal(LAYOUT, goto_red, facing_block, forward)
    assert not unsafe_subgoal(LAYOUT, goto_red, facing_block, nearest_subgoal(-0.4, 0.0, 0.0))
    # walking into the goal object is what the instruction asks; into another object is not
    assert not unsafe_subgoal(LAYOUT, goto_red, (1.3, 0.0, 0.0), forward)
    assert unsafe_subgoal(LAYOUT, goto_red, (0.0, 1.8, math.pi / 2), forward)
    assert not unsafe_subgoal(LAYOUT, goto_red, (0.0, 1.8, math.pi / 2), STOP)


def test_play_episodes_refuses_nothing_to_play():
    with pytest.raises(ValueError, match="at least one episode"):
        play_episodes(None, stand, [], Scripted(None))


def test_planner_state_reads_progress_since_the_start_and_since_the_deciders_own_stage_change():
    start = np.array([[1.0, 1.0, 0.0]])
    pose = np.array([[1.0, 3.0, math.pi / 2]])  # 2 m left of the start, facing left
    stage_pose = np.array([[1.0, 2.0, math.pi / 2]])  # the stage began 1 m back, already facing left
    state = planner_state(start, pose, np.array([0.3]), stage_pose, np.array([3.0]), 4.0)
    expected = [0.0, 2.0, 0.0, 1.0, 0.3, 1.0, 0.0, 1.0, 0.0, 0.5]  # 1 s into the stage, of a 2 s clock
    assert state.tolist()[0] == pytest.approx(expected, abs=1e-6)


def test_the_safety_supervisor_takes_a_shaking_policy_off_the_joints_and_hands_it_back_when_calm():
    from ogi.controllers.supervisor import SupervisorConfig
    from ogi.hierarchy.episodes import Safety

    env = arena(1, 0.004)
    calls = {"n": 0, "resets": 0}

    def shake(obs, done):
        calls["n"] += 1
        calls["resets"] += int(done[0]) if calls["n"] > 1 else 0
        return np.full((len(done), 12), 0.6 if calls["n"] % 2 else -0.6)

    instruction = Instruction("stand still", (Stop(),), "train", "stop")
    safety = Safety(supervisor=SupervisorConfig(max_joint_vel_radps=4.0, rearm_stable_s=0.3))
    events = []
    outcomes, _ = play_episodes(
        env,
        shake,
        [Episode(LAYOUT, instruction)],
        Scripted(None),
        keep=False,
        max_seconds=4.0,
        safety=safety,
        on_safety=lambda episode, event: events.append((episode, event)),
    )
    causes = [event.cause for _, event in events]
    assert outcomes.trips[0] >= 2 and causes.count("joint_vel") == outcomes.trips[0]
    assert "rearm" in causes and all(episode == 0 for episode, _ in events)
    # modes alternate, policy first; the fallback drove for part of the run only
    assert [(e.from_mode, e.to_mode) for _, e in events[:2]] == [("policy", "crouch"), ("crouch", "policy")]
    assert 0.0 < outcomes.fallback_s[0] < outcomes.seconds[0]
    # each hand-back starts the policy's recurrent state over
    assert calls["resets"] == causes.count("rearm")
    unsupervised, _ = play_episodes(
        env, shake, [Episode(LAYOUT, instruction)], Scripted(None), keep=False, max_seconds=1.0
    )
    assert unsupervised.trips is None and unsupervised.fallback_s is None
    env.close()


def test_a_supervisor_that_never_trips_leaves_the_run_as_it_was():
    from ogi.hierarchy.episodes import Safety

    instruction = Instruction("walk forward one meter", (Move(1.0, 0.0),), "train", "move")

    def forward(obs, done):  # a steady trot-like pattern: joints move, nothing near a limit
        return np.tile(np.sin(np.arange(12)) * 0.2, (len(done), 1))

    runs = []
    for safety in (None, Safety()):
        env = arena(1, 0.004)  # the same seed: the same randomization
        outcomes, _ = play_episodes(
            env, forward, [Episode(LAYOUT, instruction)], Scripted(None), keep=False, max_seconds=2.0, safety=safety
        )
        runs.append((outcomes.seconds[0], outcomes.path_m[0], env.pose().copy()))
        env.close()
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert outcomes.trips[0] == 0 and outcomes.fallback_s[0] == 0.0
