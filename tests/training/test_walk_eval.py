"""The walking judge: command families, the criterion, the stop hook, and a judged standing policy."""

import dataclasses

import numpy as np
import pytest
import torch

from ogi.envs import WalkConfig
from ogi.envs.config import CommandConfig, SimConfig
from ogi.policies import ActorConfig, EmpiricalNormalizer, make_actor
from ogi.training import walk_eval as W
from ogi.training.runner import Runner
from tests.training.test_train_e2e import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_each_family_draws_its_own_kind_of_command_from_the_full_space():
    rng = np.random.default_rng(0)
    full = CommandConfig()
    fwd, back, side, turn, mixed = (W.family_commands(f, 200, full, rng) for f in W.FAMILIES)
    assert (fwd[:, 0] >= 0.3).all() and (fwd[:, 0] <= 1.0).all() and not fwd[:, 1:].any()
    assert (back[:, 0] <= -0.3).all() and (back[:, 0] >= -1.0).all() and not back[:, 1:].any()
    assert (np.abs(side[:, 1]) >= 0.2).all() and (np.abs(side[:, 1]) <= 0.5).all() and (side[:, 1] < 0).any()
    assert not side[:, [0, 2]].any()
    assert (np.abs(turn[:, 2]) >= 0.4).all() and not turn[:, :2].any() and (turn[:, 2] > 0).any()
    assert (np.abs(mixed) > 0).all(axis=0).all() and (np.abs(mixed[:, 1]) <= 0.5).all()
    with pytest.raises(ValueError, match="unknown command family 'sideways'"):
        W.family_commands("sideways", 1, full, rng)


def _result(**overrides) -> W.FamilyResult:
    values = dict(episodes=8, lin_error_mps=0.08, yaw_error_radps=0.1, falls=0.0, duty_factors=(0.5, 0.45, 0.55, 0.5))
    return W.FamilyResult(**{**values, **overrides})


@pytest.mark.parametrize(
    "bad",
    [
        dict(lin_error_mps=0.11),
        dict(yaw_error_radps=0.16),
        dict(falls=0.125),
        dict(duty_factors=(0.5, 0.5, 0.7, 0.5)),
        dict(duty_factors=(0.3, 0.5, 0.5, 0.5)),
    ],
)
def test_one_family_failing_one_part_of_the_criterion_is_not_walking(bad):
    assert W.walks({f: _result() for f in W.FAMILIES})
    results = {f: _result() for f in W.FAMILIES}
    results["lateral"] = _result(**bad)
    assert not W.walks(results)
    # one family a little over the error bounds can still pass on errors averaged over the families; a fall not
    assert W.walks(results, averaged=True) == ("falls" not in bad and "duty_factors" not in bad)
    assert W.summarize(results)["worst_lin_error_mps"] == max(r.lin_error_mps for r in results.values())


def test_a_policy_that_holds_the_default_pose_is_judged_standing_not_walking():
    env_cfg = WalkConfig(num_envs=1, sim=SimConfig(sim_dt_s=0.004, nthread=1))
    actor = make_actor(45, 12, ActorConfig(kind="mlp", hidden_sizes=(8,)))
    torch.nn.init.zeros_(actor.head[-1].weight)
    torch.nn.init.zeros_(actor.head[-1].bias)
    results = W.evaluate_families(
        actor, EmpiricalNormalizer(45), W.full_fidelity(env_cfg), envs_per_family=2, episode_s=1.5, settle_s=0.5
    )
    assert set(results) == set(W.FAMILIES)
    # standing still: the linear error is the commanded speed, feet never leave the ground, nothing falls
    assert results["forward"].lin_error_mps > 0.25 and results["turning"].yaw_error_radps > 0.3
    assert results["turning"].lin_error_mps < 0.1
    assert all(r.falls == 0.0 and min(r.duty_factors) > 0.95 for r in results.values())
    assert not W.walks(results)


def test_full_fidelity_is_1khz_with_the_default_solver_and_keeps_the_task():
    env_cfg = WalkConfig(num_envs=7, sim=SimConfig(sim_dt_s=0.004, solver_iterations=1, ls_iterations=5, nthread=1))
    judged = W.full_fidelity(env_cfg)
    assert judged.sim.sim_dt_s == 0.001 and judged.sim.solver_iterations == SimConfig().solver_iterations
    assert judged.sim.nthread == 1 and judged.num_envs == 7 and judged.rewards == env_cfg.rewards


def test_stop_when_ends_training_at_the_iteration_it_says(tmp_path):
    runner = Runner(tiny_config(), tmp_path / "run")
    asked = []

    def stop_after_three(r: Runner) -> bool:
        asked.append(r.iteration)
        return r.iteration >= 3

    summary = runner.train(iterations=10, progress=False, log=False, stop_when=stop_after_three)
    assert asked == [1, 2, 3] and summary["iterations"] == 3


def test_the_judge_waits_for_its_period_and_keeps_judging_time_apart(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(W.time, "perf_counter", lambda: clock[0])
    calls = []

    def fake_evaluate(actor, normalizer, cfg, **kwargs):
        calls.append(cfg.sim.sim_dt_s)
        clock[0] += 30.0  # judging takes 30 s
        return {f: _result() for f in W.FAMILIES}

    monkeypatch.setattr(W, "evaluate_families", fake_evaluate)
    judge = W.WalkJudge(WalkConfig(num_envs=1, sim=SimConfig(sim_dt_s=0.004)), every_s=60.0)

    class FakeRunner:
        actor = normalizer = actor_normalizer = None
        env_steps = 1000

    clock[0] = 59.0
    assert judge(FakeRunner()) is False and calls == []
    clock[0] = 61.0
    assert judge(FakeRunner()) is True and calls == [0.001]
    assert judge.walked_at_s == pytest.approx(61.0) and judge.training_s == pytest.approx(61.0)
    assert judge.history[0]["walks"] and judge.history[0]["env_steps"] == 1000


def test_a_biped_is_judged_in_its_own_command_space_with_its_gait_clock():
    from ogi.training.config import preset

    cfg = preset("biped")
    assert cfg.env.gait.enabled and cfg.env.commands.lin_vel_x_mps == (-0.5, 0.8)
    assert not preset("go2").env.gait.enabled and preset("go2").env.commands == CommandConfig()
    # without the stepping pattern under it, a zero policy stands still
    still = dataclasses.replace(cfg.env.gait, swing_joint_offsets_rad={})
    env_cfg = dataclasses.replace(cfg.env, num_envs=1, gait=still, sim=SimConfig(sim_dt_s=0.004, nthread=1))
    obs_size = 45 + 2  # proprioception and the gait clock
    actor = make_actor(obs_size, 12, ActorConfig(kind="mlp", hidden_sizes=(8,)))
    torch.nn.init.zeros_(actor.head[-1].weight)
    torch.nn.init.zeros_(actor.head[-1].bias)
    results = W.evaluate_families(
        actor, EmpiricalNormalizer(obs_size), env_cfg, envs_per_family=4, episode_s=1.0, settle_s=0.5
    )
    # standing still, the linear error is the commanded speed: backward commands are within [0.15, 0.5] m/s
    assert 0.15 <= results["backward"].lin_error_mps <= 0.5
    assert results["lateral"].lin_error_mps <= 0.3
