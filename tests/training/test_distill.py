"""Distillation: the KL loss by hand, a student that learns its teacher, lineage, clear refusals, the CLI."""

import dataclasses
import json
import math

import pytest
import torch
import typer
from typer.testing import CliRunner

from ogi import checkpoints as ckpt
from ogi.envs import WalkConfig
from ogi.envs.config import SimConfig
from ogi.envs.sensing import DepthCameraConfig, HeightScanConfig
from ogi.policies import ActorConfig, CriticConfig
from ogi.training.config import TrainConfig
from ogi.training.distill import (
    DistillConfig,
    Distiller,
    check_pairing,
    distillation_loss,
    load_teacher,
    student_config,
)
from ogi.training.distill_commands import register
from ogi.training.policy_loading import load_policy
from ogi.training.ppo import PPOConfig
from ogi.training.runner import Runner
from ogi.validation import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_teacher_config(actor_obs: str = "privileged") -> TrainConfig:
    env = WalkConfig(
        num_envs=4,
        episode_length_s=0.6,
        sim=SimConfig(sim_dt_s=0.005, nthread=1),
        height_scan=HeightScanConfig(enabled=True, length_m=0.4, width_m=0.2, spacing_m=0.2),
        depth_camera=DepthCameraConfig(width=4, height=3),
    )
    return TrainConfig(
        env=env,
        actor=ActorConfig(kind="gru", hidden_sizes=(16,), recurrent_size=16, init_std=0.5),
        critic=CriticConfig(hidden_sizes=(16,)),
        ppo=PPOConfig(rollout_steps=8, epochs=1, minibatches=2),
        iterations=1,
        checkpoint_every=1,
        collect_threads=1,
        update_threads=1,
        seed=1,
        actor_obs=actor_obs,
    )


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher") / "run"
    Runner(tiny_teacher_config(), run).train(iterations=1, progress=False, log=False)
    return run


def tiny_distill(**changes) -> DistillConfig:
    base = dict(
        rollout_steps=8,
        chunk_steps=4,
        epochs=2,
        minibatches=2,
        learning_rate=3e-3,
        teacher_action_probability=0.5,
        teacher_action_iterations=2,
        checkpoint_every=100,
        collect_threads=1,
        update_threads=1,
    )
    return DistillConfig(**{**base, **changes})


def test_loss_is_the_hand_computed_gaussian_kl():
    # one action dimension: KL = log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2
    m_p, s_p, m_q, s_q = 0.3, 0.5, -0.1, 0.8
    expected = math.log(s_q / s_p) + (s_p**2 + (m_p - m_q) ** 2) / (2 * s_q**2) - 0.5
    loss = distillation_loss(
        torch.tensor([[m_p]]), torch.tensor([math.log(s_p)]), torch.tensor([[m_q]]), torch.tensor([math.log(s_q)])
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # two dimensions sum per state, states average: state 1 has KL 0, state 2 the sum of two terms
    teacher_mean = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    student_mean = torch.zeros(2, 2)
    log_std = torch.zeros(2)
    assert distillation_loss(teacher_mean, log_std, student_mean, log_std).item() == pytest.approx((0.5 + 0.5) / 2)


def test_beta_decays_linearly_to_zero():
    cfg = DistillConfig(teacher_action_probability=0.8, teacher_action_iterations=4)
    assert [cfg.teacher_action_beta(k) for k in range(6)] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0, 0.0])


def test_student_kl_to_the_teacher_falls_and_its_lineage_verifies(teacher_run, tmp_path):
    teacher = load_teacher(teacher_run)
    # a teacher one PPO iteration old still outputs ~0 with the student's initial std: give it a clear policy
    with torch.no_grad():
        teacher.actor.head[-1].weight.mul_(10.0)
        teacher.actor.log_std.fill_(math.log(0.2))
    cfg = student_config(teacher.cfg, depth=True)
    assert cfg.actor.kind == "student" and (cfg.actor.depth_height, cfg.actor.depth_width) == (3, 4)
    out = tmp_path / "student"
    distiller = Distiller(teacher, cfg, tiny_distill(epochs=4, learning_rate=1e-2), out)
    before = distiller.collect()["distill/kl_on_rollout"]
    losses = []
    for _ in range(8):
        losses.append(distiller.update()["distill/kl_update"])
        distiller.collect()
    after = distiller.collect()["distill/kl_on_rollout"]
    assert after < 0.5 * before, (before, after)
    assert losses[-1] < 0.5 * losses[0]
    distiller.save()
    chain = ckpt.verify_checkpoint(distiller.last_checkpoint.path)
    assert chain[1].checkpoint_sha256 == teacher.checkpoint.checkpoint_sha256
    assert chain[-1].path.parent.parent == teacher_run.resolve() or chain[-1].path.parent.parent == teacher_run
    # the student run loads like any run, reads the policy group with the depth image, and acts the same
    actor, normalizer, loaded_cfg, _ = load_policy(out)
    assert loaded_cfg.actor_obs == "policy" and loaded_cfg.env.depth_camera.enabled
    obs = torch.randn(3, actor.obs_dim)
    state = actor.initial_state(3)
    expected, _ = distiller.student(distiller.normalizer(obs), state)
    got, _ = actor(normalizer(obs), state)
    torch.testing.assert_close(got, expected)


def test_a_policy_observation_run_is_refused_as_teacher(tmp_path):
    run = tmp_path / "plain"
    Runner(tiny_teacher_config(actor_obs="policy"), run).train(iterations=1, progress=False, log=False)
    with pytest.raises(ConfigError, match="actor_obs = 'policy'.*privileged"):
        load_teacher(run)


def test_a_student_for_another_robot_or_camera_is_refused():
    teacher_cfg = tiny_teacher_config()
    student = student_config(teacher_cfg, depth=True)
    check_pairing(teacher_cfg, student)
    other = dataclasses.replace(student, env=dataclasses.replace(student.env, robot="biped"))
    with pytest.raises(ConfigError, match="env.robot = 'biped'.*'go2'"):
        check_pairing(teacher_cfg, other)
    camera = dataclasses.replace(student.env.depth_camera, width=5)
    wrong_image = dataclasses.replace(student, env=dataclasses.replace(student.env, depth_camera=camera))
    with pytest.raises(ConfigError, match="actor.depth_height x actor.depth_width = 3 x 4"):
        check_pairing(teacher_cfg, wrong_image)
    scan = dataclasses.replace(student.env.height_scan, spacing_m=0.1)
    with pytest.raises(ConfigError, match="env.height_scan"):
        check_pairing(teacher_cfg, dataclasses.replace(student, env=dataclasses.replace(student.env, height_scan=scan)))


def test_distill_command_with_fine_tuning(teacher_run, tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `distill` a named subcommand
    out = tmp_path / "cli_student"
    result = CliRunner().invoke(
        app,
        [
            "distill",
            str(teacher_run),
            "--out",
            str(out),
            "--minutes",
            "0",
            "--iterations",
            "2",
            "--no-depth",
            "--num-envs",
            "4",
            "--finetune-iterations",
            "1",
            "--eval-seconds",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "distill_summary.json").read_text())
    assert summary["distill"]["iterations"] == 2
    assert set(summary) == {"distill", "teacher_eval", "student_eval", "finetune", "finetuned_eval"}
    _, _, cfg, _ = load_policy(out)
    assert not cfg.env.depth_camera.enabled and cfg.actor.depth_height == 0
    # fine-tuned -> distilled (2 iterations) -> teacher (1 iteration)
    chain = ckpt.verify_checkpoint(ckpt.latest_valid_checkpoint(out / "finetune").path)
    assert len(chain) == 3 and chain[1].path.parent.parent == out

    refused = CliRunner().invoke(app, ["distill", str(out), "--out", str(tmp_path / "again"), "--iterations", "1"])
    assert refused.exit_code == 2 and "privileged" in refused.output


def test_the_documented_teacher_toml_gives_a_privileged_run_with_the_height_scan(tmp_path):
    from ogi.training.cli_train import build_config

    toml = tmp_path / "teacher.toml"
    toml.write_text(
        'actor_obs = "privileged"\nupdate_threads = 1\n\n[ppo]\nsymmetry_coef = 0.0\n\n'
        "[env.height_scan]\nenabled = true\n"
    )
    cfg = build_config(
        robot="go2", task="walk", config=toml, iterations=None, minutes=20.0, num_envs=None, actor=None, seed=None
    )
    assert cfg.actor_obs == "privileged" and cfg.env.height_scan.enabled and cfg.update_threads == 1
    assert cfg.max_minutes == 20.0 and not cfg.env.depth_camera.enabled
    student = student_config(cfg, depth=True)
    assert student.env.depth_camera.enabled and student.actor.kind == "student"


def test_a_teacher_over_the_preset_keeps_the_symmetry_loss_and_a_depth_student_drops_it(tmp_path):
    from ogi.training.cli_train import build_config

    toml = tmp_path / "teacher.toml"
    toml.write_text('actor_obs = "privileged"\n\n[env.height_scan]\nenabled = true\n')
    cfg = build_config(
        robot="go2", task="walk", config=toml, iterations=1, minutes=None, num_envs=None, actor=None, seed=None
    )
    assert cfg.actor_obs == "privileged" and cfg.ppo.symmetry_coef > 0
    assert student_config(cfg, depth=True).ppo.symmetry_coef == 0.0
    assert student_config(cfg, depth=False).ppo.symmetry_coef == cfg.ppo.symmetry_coef
