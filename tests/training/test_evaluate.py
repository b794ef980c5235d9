"""Judging a policy on terrain: success per kind at one curriculum level."""

import dataclasses
from pathlib import Path

import pytest


def test_terrain_success_judges_each_kind_at_one_level_with_full_commands():
    from ogi.envs.config import TerrainConfig
    from ogi.training.evaluate import terrain_success
    from ogi.training.policy_loading import load_policy

    actor, normalizer, cfg, _ = load_policy(Path("ogi/policies/pretrained/go2_walk_omni"))
    env_cfg = dataclasses.replace(
        cfg.env,
        terrain=TerrainConfig(enabled=True, kinds=("flat", "gaps")),
        sim=dataclasses.replace(cfg.env.sim, nthread=1, sim_dt_s=0.002),
    )
    easy = terrain_success(actor, normalizer, env_cfg, level=0, episodes_per_kind=4, seed=3, episode_s=3.0)
    hard = terrain_success(actor, normalizer, env_cfg, level=9, episodes_per_kind=4, seed=3, episode_s=3.0)
    assert set(easy) == {"flat", "gaps"}
    assert easy["flat"] >= 0.5 and hard["gaps"] <= easy["flat"]  # 40 cm gaps swallow a blind flat walker
    with pytest.raises(ValueError, match="outside 0..9"):
        terrain_success(actor, normalizer, env_cfg, level=10, episodes_per_kind=1, seed=0)
