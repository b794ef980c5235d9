import dataclasses

import torch

from ogi.training.config import preset
from ogi.training.lagrangian import DualState, SafetyConfig
from ogi.training.runner import Runner


def _cfg():
    cfg = preset()
    env = dataclasses.replace(cfg.env, num_envs=4, episode_length_s=0.5)
    return dataclasses.replace(
        cfg,
        env=env,
        ppo=dataclasses.replace(cfg.ppo, rollout_steps=8, minibatches=2, epochs=1),
        safety=SafetyConfig(enabled=True, fall_limit=0.02, lambda_lr=1.0),
        iterations=1,
        checkpoint_every=1,
    )


def test_constrained_run_logs_lambda_and_resume_restores_it(tmp_path):
    runner = Runner(_cfg(), tmp_path / "run")
    runner.train(progress=False, log=False)
    stats = runner.last_stats
    assert {"safety/lambda", "safety/fall_probability", "loss/cost_surrogate", "loss/cost_value"} <= set(stats)
    assert runner.ppo.lagrangian.dual.updates == 1
    # a multiplier the next save must carry
    runner.ppo.lagrangian.dual = DualState(multiplier=0.7, integral=0.7, previous_cost=0.3, updates=5)
    with torch.no_grad():
        next(runner.ppo.lagrangian.cost_critic.parameters()).add_(1.0)
    runner.iteration += 1
    runner.env_steps += 1
    runner.save()
    resumed = Runner(_cfg(), tmp_path / "run", resume=True)
    assert resumed.ppo.lagrangian.dual == DualState(multiplier=0.7, integral=0.7, previous_cost=0.3, updates=5)
    for a, b in zip(resumed.ppo.lagrangian.cost_critic.parameters(), runner.ppo.lagrangian.cost_critic.parameters()):
        assert torch.equal(a, b)
    # the cost critic is trained by the same optimizer as actor and critic
    trained = {id(p) for group in resumed.ppo.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in trained for p in resumed.ppo.lagrangian.cost_critic.parameters())


def test_unconstrained_run_has_no_lagrangian(tmp_path):
    cfg = dataclasses.replace(_cfg(), safety=SafetyConfig())
    runner = Runner(cfg, tmp_path / "run")
    runner.train(progress=False, log=False)
    assert runner.ppo.lagrangian is None
    assert "safety/lambda" not in runner.last_stats and "safety/fall_probability" in runner.last_stats


def test_fall_limit_option_turns_the_constraint_on():
    from ogi.training.cli_train import build_config

    common = dict(robot="go2", task="walk", config=None, iterations=1, minutes=None, num_envs=4, actor=None, seed=0)
    assert not build_config(**common).safety.enabled
    cfg = build_config(**common, fall_limit=0.02)
    assert cfg.safety.enabled and cfg.safety.fall_limit == 0.02


def test_fall_limit_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from ogi.cli import app

    result = CliRunner().invoke(app, ["train", "--fall-limit", "1.5", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code != 0 and "fall-limit" in result.output
