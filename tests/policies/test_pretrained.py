from pathlib import Path

import ogi.policies
from ogi.checkpoints import verify_checkpoint
from ogi.training.policy_loading import load_policy

PRETRAINED = Path(ogi.policies.__file__).parent / "pretrained" / "go2_walk_gru"


def test_shipped_checkpoint_verifies_and_loads():
    chain = verify_checkpoint(PRETRAINED)
    assert len(chain) == 1 and chain[0].step > 1_000_000
    actor, normalizer, cfg, checkpoint = load_policy(PRETRAINED)
    assert cfg.env.robot == "go2" and cfg.actor.kind == "gru" and actor.is_recurrent
    assert checkpoint.eval_scores["tracking_error_mps"] < 0.15


OMNI = Path(ogi.policies.__file__).parent / "pretrained" / "go2_walk_omni"


def test_shipped_omnidirectional_walker_verifies_and_goes_where_it_is_told():
    from ogi.training.walk_eval import evaluate_families, full_fidelity

    chain = verify_checkpoint(OMNI)
    assert len(chain) == 1
    actor, normalizer, cfg, checkpoint = load_policy(OMNI)
    commands = cfg.env.commands
    assert commands.lin_vel_x_mps == (-1.0, 1.0) and commands.lin_vel_y_mps == (-0.5, 0.5)
    assert commands.yaw_rate_radps == (-1.0, 1.0) and cfg.ppo.symmetry_coef > 0
    # a short judgement on the 1 kHz model: it moves each way it is told and does not fall
    results = evaluate_families(
        actor,
        normalizer,
        full_fidelity(cfg.env),
        envs_per_family=2,
        episode_s=4.0,
        settle_s=1.5,
        families=("backward", "lateral", "turning"),
    )
    assert all(r.falls == 0.0 for r in results.values())
    assert results["backward"].lin_error_mps < 0.35 and results["lateral"].lin_error_mps < 0.3
    assert results["turning"].yaw_error_radps < 0.35
    assert all(0.3 < d < 0.7 for r in results.values() for d in r.duty_factors)
