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
