"""The push adversary: its pushes keep to the budget, it learns in alternation with the walker against a league of
frozen walkers, it rides in the run's checkpoints, and a resumed run goes on bit-identically."""

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from ogi import checkpoints as ckpt
from ogi.training.adversary import PushAdversary, push_from_action, yaw_of
from ogi.training.config import AdversaryConfig, load_train_config
from ogi.training.runner import Runner
from ogi.validation import ConfigError
from tests.training.test_train_e2e import params, tiny_config


def adversarial(**changes) -> object:
    cfg = tiny_config()
    settings = dict(
        enabled=True,
        min_interval_s=0.04,
        pushes_per_episode=2,
        walker_iterations=1,
        snapshot_every=1,
        league_size=2,
        league_probability=0.5,
        ppo=dataclasses.replace(cfg.ppo),
        hidden_sizes=(16,),
    )
    adversary = AdversaryConfig(**{**settings, **changes})
    return dataclasses.replace(cfg, adversary=adversary)


def test_a_push_keeps_to_the_budget_and_points_where_it_is_told():
    cfg = AdversaryConfig(max_push_velocity_mps=0.5, point_offset_m=(0.2, 0.05))
    dt, mass = 0.02, np.array([10.0, 10.0, 10.0, 10.0])
    action = np.array(
        [
            [1.0, 3.0, 4.0, 0.0, 0.0],  # fires, direction clipped to the unit disk
            [1.0, 0.5, 0.0, 5.0, 0.0],  # half size, landing at the nose: twists the base
            [-1.0, 1.0, 0.0, 0.0, 0.0],  # does not fire
            [1.0, 1.0, 0.0, 0.0, 0.0],  # would fire, but the budget says no
        ]
    )
    allowed = np.array([True, True, True, False])
    force, torque, fired = push_from_action(action, allowed, mass, np.zeros(4), dt, cfg)
    assert fired.tolist() == [True, True, False, False]
    dv = np.linalg.norm(force, axis=1) * dt / mass
    np.testing.assert_allclose(dv, [0.5, 0.25, 0.0, 0.0])
    np.testing.assert_allclose(force[0, :2] / np.linalg.norm(force[0, :2]), [0.6, 0.8])
    assert torque[0] == pytest.approx(np.zeros(3))
    # 0.2 m ahead of the centre, a push along +x gives no twist; the same push sideways would
    assert torque[1] == pytest.approx(np.zeros(3))
    sideways = np.array([[1.0, 0.0, 1.0, 1.0, 0.0]])
    _, twist, _ = push_from_action(sideways, np.array([True]), mass[:1], np.zeros(1), dt, cfg)
    assert twist[0, 2] == pytest.approx(0.2 * 10.0 * 0.5 / dt)
    # the heading frame: a robot facing +y is pushed "forward" along world +y
    ahead, _, _ = push_from_action(
        action[:1, :] * [1, 1, 0, 0, 0], np.array([True]), mass[:1], np.array([np.pi / 2]), dt, cfg
    )
    assert ahead[0, 1] > 0 and abs(ahead[0, 0]) < 1e-9


def test_yaw_of_reads_the_heading():
    half = np.pi / 8
    quat = np.array([[np.cos(half), 0.0, 0.0, np.sin(half)], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(yaw_of(quat), [np.pi / 4, 0.0], atol=1e-12)


def test_the_adversary_pushes_within_its_budget_and_learns_alternating_with_a_league(tmp_path):
    runner = Runner(adversarial(), tmp_path / "run")
    (adversary,) = runner.hooks
    assert isinstance(adversary, PushAdversary)
    # its pushes replace the random ones
    assert runner.env.cfg.randomization.push_velocity_mps == 0.0
    before = [p.detach().clone() for p in adversary.actor.parameters()]
    walker_state = None
    stats = {}
    for _ in range(3):
        stats = runner.collect()
        walker_state = [s.clone() for s in runner.ppo.state]
        stats.update(runner.update())
    assert adversary.walker_iterations == 3
    assert len(adversary.league) == 2  # a snapshot every iteration, the newest two kept
    assert adversary.env_steps == 3 * 4 * 8
    assert any(not torch.equal(a, b) for a, b in zip(before, adversary.actor.parameters()))
    assert np.isfinite(stats["adversary/reward"])
    # at most one push per 0.04 s interval: 1,500 per simulation-minute
    assert 0 <= stats["adversary/pushes_per_min"] <= 1500
    assert all(np.isfinite(v) for k, v in stats.items() if k.startswith("adversary/"))
    assert walker_state is not None and all(torch.isfinite(s).all() for s in walker_state)
    assert (adversary.pushes_left >= 0).all() and (adversary.pushes_left <= 2).all()


def test_every_push_the_env_sees_is_one_the_budget_allowed(tmp_path):
    runner = Runner(adversarial(min_interval_s=0.1, pushes_per_episode=1), tmp_path / "run")
    (adversary,) = runner.hooks
    env = runner.env
    pushes_this_episode = np.zeros(env.num_envs, dtype=int)
    gap = np.full(env.num_envs, 10**6)
    for _ in range(60):
        adversary.push(runner, np.tile([1.0, 1.0, 0.0, 0.0, 0.0], (env.num_envs, 1)))  # always asks
        pushed = (env._external_push[0] != 0).any(axis=1) if env._external_push is not None else np.zeros(4, bool)
        assert (gap[pushed] >= adversary.min_interval_steps).all()
        pushes_this_episode += pushed
        gap = np.where(pushed, 0, gap) + 1
        runner.obs, _, terminated, truncated, info = env.step(np.zeros((env.num_envs, env.robot.num_joints)))
        assert (pushes_this_episode <= 1).all()
        done = terminated | truncated
        adversary._tick(done, info["fell"])
        pushes_this_episode[done] = 0
        gap[done] = 10**6
    assert adversary._pushes > 0


def test_resume_with_the_adversary_is_bit_identical(tmp_path):
    cfg = adversarial()
    first = tmp_path / "run"
    runner = Runner(cfg, first)
    runner.train(iterations=2, progress=False, log=False)
    loaded = ckpt.load_checkpoint(runner.last_checkpoint.path)
    assert "adversary" in loaded.data_manifest["hooks"]
    assert any(k.startswith("adversary/league/1/actor/") for k in loaded.state)
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    runner.train(iterations=2, progress=False, log=False)
    (adversary,) = runner.hooks
    resumed = Runner(cfg, copy, resume=True)
    (resumed_adversary,) = resumed.hooks
    resumed.train(iterations=2, progress=False, log=False)
    for a, b in zip(params(runner), params(resumed)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(adversary.actor.parameters(), resumed_adversary.actor.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [c.iteration for c in ckpt.verify_checkpoint(resumed.last_checkpoint.path)] == [4, 3, 2, 1]


def test_bad_adversary_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="adversary.pushes_per_episode"):
        AdversaryConfig(pushes_per_episode=0)
    with pytest.raises(ConfigError, match="adversary.point_offset_m"):
        AdversaryConfig(point_offset_m=(0.1,))
    with pytest.raises(ConfigError, match="adversary.league_probability"):
        AdversaryConfig(league_probability=1.5)
    path = tmp_path / "run.toml"
    path.write_text("[adversary]\nenabled = true\nmin_interval_s = -1.0\n")
    with pytest.raises(ConfigError, match="min_interval_s"):
        load_train_config(path, tiny_config())
    path.write_text("[adversary]\nenabled = true\npush_every = 3\n")
    with pytest.raises(ConfigError, match="push_every"):
        load_train_config(path, tiny_config())


def test_push_next_refuses_bad_pushes(tmp_path):
    runner = Runner(tiny_config(), tmp_path / "run")
    with pytest.raises(ValueError, match="shape"):
        runner.env.push_next(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        runner.env.push_next(np.full((4, 3), np.nan))


def test_ogi_train_adversary_flag_trains_and_saves_the_adversary(tmp_path):
    from typer.testing import CliRunner

    from ogi.cli import app

    run = tmp_path / "run"
    args = ["train", "--adversary", "--iterations", "1", "--num-envs", "4", "--run-dir", str(run), "--no-eval"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    loaded = ckpt.load_checkpoint(ckpt.latest_valid_checkpoint(run).path)
    assert loaded.checkpoint.config["adversary"]["enabled"] is True
    assert "adversary" in loaded.data_manifest["hooks"]
    refused = CliRunner().invoke(app, [*args[:-3], "--run-dir", str(tmp_path / "w"), "--workers", "2"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def test_warmup_trains_the_adversary_before_the_walker_first_acts(tmp_path):
    runner = Runner(adversarial(warmup_rounds=2, walker_iterations=100), tmp_path / "run")
    (adversary,) = runner.hooks
    before = [p.detach().clone() for p in adversary.actor.parameters()]
    runner.collect()
    assert adversary.warmup_left == 0
    assert adversary.env_steps == 2 * 4 * 8  # two rounds; the walker's own rollout adds none
    assert any(not torch.equal(a, b) for a, b in zip(before, adversary.actor.parameters()))
    runner.update()
    runner.collect()
    assert adversary.env_steps == 2 * 4 * 8  # no more warm-up, and no adversary round before 100 iterations
