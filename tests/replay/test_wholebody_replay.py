"""Whole-body task rollouts record and replay bit for bit: objects, tables re-placed and resized at each reset,
the goals written as events."""

import numpy as np
import pytest

from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv
from ogi.replay import Recording, record_whole_body, replay_check


@pytest.mark.parametrize("task", ["reach", "pick_place", "push"])
def test_a_whole_body_rollout_with_resets_replays_bit_for_bit(task, tmp_path):
    env = WholeBodyVecEnv(WholeBodyConfig(task=task, num_envs=2, seed=1, episode_s=0.3))
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    path = tmp_path / f"{task}.mcap"
    ends = 0
    with record_whole_body(env, path, meta={"source": "test"}):
        for _ in range(40):
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, (2, 23)))
            ends += int((terminated | truncated).sum())
    assert ends >= 4  # new objects, sizes and tables several times
    recording = Recording(path)
    result = replay_check(recording)
    assert result.exact, result.first_divergence
    assert recording.info["task"] == task
    goals = [e for e in recording.events if e["kind"] == "task"]
    assert {e["sim"] for e in goals if e["cause"] == "recording start"} == {0, 1}
    assert len([e for e in goals if e["cause"] == "episode start"]) == ends
    last = {e["sim"]: e["data"]["goal"] for e in goals}
    np.testing.assert_allclose([last[0], last[1]], env.goal)
    assert not env.goal_listeners  # closed: the env no longer reports to it
