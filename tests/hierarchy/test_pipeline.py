"""The planner's whole pipeline end to end at toy sizes: every stage runs, saves a checkpoint with lineage, and the
evaluation covers every planner and the oracle on held-out episodes."""

from __future__ import annotations

from ogi.checkpoints.lineage import verify_lineage
from ogi.envs.instructions import HELDOUT_TARGETS
from ogi.hierarchy.pipeline import PipelineConfig, PlannerPipeline, sample_episodes
from ogi.hierarchy.planner_rl import PlannerRLConfig
from ogi.hierarchy.planner_training import PlannerPretrainConfig, PlannerSFTConfig
from ogi.hierarchy.planner_verifier import VerifierConfig
from ogi.lm.config import ModelShape
from ogi.policies.planner import PlannerConfig, load_planner

TINY_PLANNER = PlannerConfig(model=ModelShape(context_length=48, n_layers=1, width=32, n_heads=2, prefix_dim=16))


def test_sampled_episodes_of_the_two_splits_differ():
    train = sample_episodes(40, "train", seed=0)
    heldout = sample_episodes(40, "heldout", seed=0)
    assert {e.instruction.text for e in train}.isdisjoint(e.instruction.text for e in heldout)
    assert all(e.instruction.split == "heldout" and e.instruction.novelty for e in heldout)
    named = [(o.colour, o.shape) for e in train for o in (e.layout.objects[i] for i in e.instruction.targets)]
    assert not set(named) & HELDOUT_TARGETS
    assert sample_episodes(3, "train", seed=0) == train[:3]
    # training wording in layouts that training never draws
    seen = sample_episodes(40, "train", seed=0, fresh_layouts=True)
    assert all(e.instruction.split == "train" for e in seen)
    assert {e.layout for e in seen}.isdisjoint(e.layout for e in train)


def test_the_pipeline_runs_every_stage_end_to_end(tmp_path):
    cfg = PipelineConfig(
        num_envs=4,
        documents=60,
        pretrain=PlannerPretrainConfig(steps=2, batch_size=4, planner=TINY_PLANNER),
        demo_episodes=4,
        dagger_rounds=2,
        dagger_episodes=4,
        sft=PlannerSFTConfig(steps=3, batch_size=8),
        dagger_sft_steps=2,
        rl=PlannerRLConfig(iterations=1, episodes_per_iteration=4, minibatch_size=64, epochs=1),
        verifier_episodes=4,
        verifier=VerifierConfig(steps=2, batch_size=8),
        best_of_n=2,
        eval_episodes=4,
        seen_wording_episodes=2,
        max_episode_s=3.0,
    )
    logged: list[str] = []
    result = PlannerPipeline(cfg, tmp_path, log=logged.append).run()
    assert set(result.success) == {"oracle", "sft", "sft_rl", "best_of_n", "blind", "sft_rl_literal"}
    assert all(0.0 <= value <= 1.0 for value in result.success.values())
    assert result.detail["oracle"]["success"] == result.success["oracle"]
    assert result.rates.hz == {"planner": 5.0, "policy": 50.0, "pd": 250.0}
    # lineage, every hash checked: verifier <- rl ... <- sft ... <- pretrained planner <- language model
    chain = verify_lineage(result.checkpoints["verifier"]).checkpoints
    stages = [checkpoint.config["stage"] for checkpoint in chain]
    assert stages[0] == "verifier" and {"rl", "sft"} <= set(stages) and stages[-1] == "pretrain"
    assert chain[-1].config.get("kind") != "planner"  # the text-only language model is the root
    assert load_planner(result.checkpoints["blind"]).planner.config.vision is False
    assert any(line.startswith("held-out blind") for line in logged)
    assert set(result.detail["seen_wording"]) == {"oracle", "sft", "sft_rl", "blind"}
