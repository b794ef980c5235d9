"""The planner network: shapes, decisions restricted to the reserved tokens, blind and seeing planners alike but for
the image path, the KV-cached path equal to the recomputed one, checkpoints, tokenizer and latency helpers."""

import dataclasses

import pytest
import torch

from ogi.checkpoints import CheckpointError, CheckpointHashMismatchError, save_checkpoint
from ogi.lm.config import ModelShape
from ogi.lm.data import ContextLengthError
from ogi.lm.model import CausalTransformer, TransformerConfig
from ogi.lm.tokenizer import train_tokenizer
from ogi.policies.planner import (
    STATE_DIM,
    Planner,
    PlannerConfig,
    decision_latency,
    load_language_model_weights,
    load_planner,
    planner_tokenizer,
    save_planner,
)
from ogi.validation import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = PlannerConfig(
    image_height=8,
    image_width=8,
    conv_channels=(8,),
    vision_grid=(2, 2),
    num_stages=2,
    num_subgoals=5,
    model=ModelShape(context_length=24, n_layers=1, width=32, n_heads=2, prefix_dim=16),
)
TEXTS = ("go to the red box", "turn left then stop at the blue ball", "stop")


def make_planner(config: PlannerConfig = TINY, seed: int = 0) -> Planner:
    torch.manual_seed(seed)
    return Planner(config, planner_tokenizer(TEXTS, num_action_tokens=config.num_action_tokens))


def make_inputs(planner: Planner, texts=TEXTS, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    count, config = len(texts), planner.config
    images = torch.rand(count, config.image_height, config.image_width, 4, generator=generator)
    states = torch.randn(count, config.state_dim, generator=generator)
    prev_stages = torch.randint(0, config.num_stages, (count,), generator=generator)
    return (images, states, prev_stages, *planner.encode(texts))


def test_defaults_are_the_arena_codebook_and_a_small_model():
    config = PlannerConfig()
    assert (config.num_stages, config.num_subgoals, config.state_dim) == (4, 61, STATE_DIM)
    assert config.num_action_tokens == 65 and config.stop_subgoal == 60
    assert config.n_prefix == 13 and config.max_prompt_tokens == 64 - 13 - 2
    assert (config.model.width, config.model.n_layers, config.model.context_length) == (96, 3, 64)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="planner.num_subgoals"):
        PlannerConfig(num_subgoals=1)
    with pytest.raises(ConfigError, match="prefix_dim"):
        PlannerConfig(model=ModelShape(prefix_dim=0))
    with pytest.raises(ConfigError, match="context_length"):
        PlannerConfig(model=ModelShape(context_length=16, prefix_dim=8))
    assert PlannerConfig.from_dict(TINY.to_dict()) == TINY


def test_shapes():
    planner = make_planner()
    inputs = make_inputs(planner)
    stages = torch.tensor([0, 1, 1])
    stage_logits, subgoal_logits = planner.decision_logits(*inputs, stages)
    assert stage_logits.shape == (3, 2) and subgoal_logits.shape == (3, 5)
    chosen = planner.act(*inputs)
    assert [tensor.shape for tensor in chosen] == [(3,)] * 3
    candidates = planner.act(*inputs, n_candidates=4)
    assert [tensor.shape for tensor in candidates] == [(3, 4)] * 3


def _favour(planner: Planner, token_id: int) -> None:
    """Make ``token_id`` the transformer's top token everywhere: hidden states get a large constant offset that
    only that token's embedding row lines up with."""
    with torch.no_grad():
        planner.transformer.norm.bias.fill_(5.0)
        planner.transformer.token_embedding.weight[token_id] = 1.0


def test_act_returns_only_reserved_tokens_even_when_another_token_dominates():
    planner = make_planner()
    _favour(planner, planner.tokenizer.eos_id)
    images, states, prev_stages, ids, lengths = make_inputs(planner)
    hidden = planner.hidden_after(images, states, prev_stages, ids, lengths)[:, 0]
    assert (planner.transformer.logits(hidden).argmax(-1) == planner.tokenizer.eos_id).all()
    stages, subgoals, log_probs = planner.act(images, states, prev_stages, ids, lengths, n_candidates=50)
    assert ((stages >= 0) & (stages < 2)).all() and ((subgoals >= 0) & (subgoals < 5)).all()
    assert torch.isfinite(log_probs).all() and (log_probs <= 0).all()
    # the chosen tokens' probabilities, summed over every valid (stage, subgoal), make one distribution
    stage_logits, _ = planner.decision_logits(images, states, prev_stages, ids, lengths, torch.zeros(3, dtype=int))
    total = torch.zeros(3)
    for stage in range(2):
        _, subgoal_logits = planner.decision_logits(images, states, prev_stages, ids, lengths, torch.full((3,), stage))
        joint = torch.log_softmax(stage_logits, -1)[:, stage, None] + torch.log_softmax(subgoal_logits, -1)
        total += joint.exp().sum(-1)
    torch.testing.assert_close(total, torch.ones(3))


def test_stop_is_reachable():
    planner = make_planner()
    inputs = make_inputs(planner)
    _, subgoals, _ = planner.act(*inputs, n_candidates=200, generator=torch.Generator().manual_seed(0))
    assert set(subgoals.flatten().tolist()) == set(range(5))
    stop_token = planner.subgoal_token_ids[TINY.stop_subgoal]
    _favour(planner, int(stop_token))
    _, greedy, _ = planner.act(*inputs, greedy=True)
    assert (greedy == TINY.stop_subgoal).all()


def test_act_log_probs_match_the_teacher_forced_ones():
    planner = make_planner()
    inputs = make_inputs(planner)
    stages, subgoals, log_probs = planner.act(*inputs, generator=torch.Generator().manual_seed(3))
    recomputed, hidden = planner.log_prob(*inputs, stages, subgoals)
    torch.testing.assert_close(log_probs, recomputed, atol=1e-5, rtol=0)
    assert hidden.shape == (3, TINY.model.width)


def test_cached_and_recomputed_decisions_agree():
    planner = make_planner()
    inputs = make_inputs(planner, texts=("go to the red box", "stop at the blue ball"))  # equal prompt lengths
    assert inputs[4][0] == inputs[4][1]
    first = planner.act(*inputs, n_candidates=6, generator=torch.Generator().manual_seed(5))
    second = planner.act(*inputs, n_candidates=6, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    torch.testing.assert_close(first[2], second[2], atol=1e-5, rtol=0)


def test_padding_does_not_reach_another_row():
    planner = make_planner()
    images, states, prev_stages, ids, lengths = make_inputs(planner)
    assert len(set(lengths.tolist())) > 1
    batch = planner.act(images, states, prev_stages, ids, lengths, greedy=True)
    for row in range(3):
        alone = planner.act(
            images[row : row + 1],
            states[row : row + 1],
            prev_stages[row : row + 1],
            ids[row : row + 1, : lengths[row]],
            lengths[row : row + 1],
            greedy=True,
        )
        assert [int(t[row]) for t in batch[:2]] == [int(t[0]) for t in alone[:2]]
        torch.testing.assert_close(batch[2][row], alone[2][0], atol=1e-5, rtol=0)


def test_blind_and_seeing_planners_differ_only_in_the_image_path():
    seeing = make_planner()
    blind = make_planner(dataclasses.replace(TINY, vision=False))
    seeing_shapes = {k: v.shape for k, v in seeing.state_dict().items() if not k.startswith("vision_encoder.")}
    blind_shapes = {k: v.shape for k, v in blind.state_dict().items() if k != "blind_tokens"}
    assert seeing_shapes == blind_shapes
    assert any(k.startswith("vision_encoder.") for k in seeing.state_dict()) and "blind_tokens" in blind.state_dict()
    images, *rest = make_inputs(blind)
    stages = torch.zeros(3, dtype=torch.long)
    other_images = torch.rand_like(images)
    torch.testing.assert_close(
        blind.decision_logits(images, *rest, stages), blind.decision_logits(other_images, *rest, stages)
    )
    assert not torch.allclose(
        seeing.decision_logits(images, *rest, stages)[1], seeing.decision_logits(other_images, *rest, stages)[1]
    )


def test_the_previous_stage_and_state_reach_the_decision():
    planner = make_planner()
    images, states, prev_stages, ids, lengths = make_inputs(planner)
    stages = torch.zeros(3, dtype=torch.long)
    base = planner.decision_logits(images, states, prev_stages, ids, lengths, stages)[0]
    assert not torch.allclose(base, planner.decision_logits(images, states, 1 - prev_stages, ids, lengths, stages)[0])
    assert not torch.allclose(base, planner.decision_logits(images, states + 1, prev_stages, ids, lengths, stages)[0])


def test_planner_tokenizer_extends_a_base_without_moving_its_ids():
    base = train_tokenizer(["go to the box"], num_action_tokens=TINY.num_action_tokens)
    extended = planner_tokenizer(["go to the purple cone"], num_action_tokens=TINY.num_action_tokens, base=base)
    assert extended.vocabulary[: base.vocab_size] == base.vocabulary
    assert extended.encode("purple cone") != [extended.unk_id] * 2 and base.encode("purple") == [base.unk_id]
    with pytest.raises(ConfigError, match="action tokens"):
        planner_tokenizer(["x"], num_action_tokens=TINY.num_action_tokens + 1, base=base)
    with pytest.raises(ConfigError, match="action tokens"):
        Planner(TINY, train_tokenizer(["go"], num_action_tokens=TINY.num_action_tokens - 1))


def test_language_model_weights_load_into_a_grown_vocabulary():
    base = train_tokenizer(list(TEXTS[:2]), num_action_tokens=TINY.num_action_tokens)
    language_model = CausalTransformer(
        TransformerConfig.from_shape(dataclasses.replace(TINY.model, prefix_dim=0), base.vocab_size)
    )
    planner = Planner(TINY, planner_tokenizer(TEXTS + ("a new word",), num_action_tokens=7, base=base))
    assert planner.tokenizer.vocab_size > base.vocab_size
    fresh_rows = planner.transformer.token_embedding.weight[base.vocab_size :].clone()
    load_language_model_weights(planner, language_model)
    torch.testing.assert_close(planner.transformer.blocks[0].qkv.weight, language_model.blocks[0].qkv.weight)
    torch.testing.assert_close(
        planner.transformer.token_embedding.weight[: base.vocab_size], language_model.token_embedding.weight
    )
    torch.testing.assert_close(planner.transformer.token_embedding.weight[base.vocab_size :], fresh_rows)
    wrong = CausalTransformer(
        TransformerConfig.from_shape(ModelShape(context_length=24, width=16, n_heads=2), base.vocab_size)
    )
    with pytest.raises(ConfigError, match="shape"):
        load_language_model_weights(planner, wrong)


def test_over_long_instructions_name_themselves():
    planner = make_planner()
    with pytest.raises(ContextLengthError, match="go go go"):
        planner.encode(["go " * 30])


def test_checkpoint_round_trip_parent_and_corruption(tmp_path):
    planner = make_planner()
    inputs = make_inputs(planner)
    parent = save_checkpoint(
        tmp_path / "parent",
        step=1,
        iteration=1,
        weights={"w": torch.zeros(1)},
        state={},
        config={"stage": "pretrain"},
        reward_weights={},
        data_manifest={},
    )
    checkpoint = save_planner(
        tmp_path / "run",
        planner,
        stage="sft",
        stage_config={"steps": 3},
        step=3,
        iteration=3,
        data_manifest={"decisions": 10},
        eval_scores={"accuracy": 0.5},
        parent=parent,
        heads={"value.bias": torch.ones(2)},
    )
    assert checkpoint.parent_sha256 == parent.checkpoint_sha256
    loaded = load_planner(tmp_path / "run", expect_stage=("sft",))
    assert loaded.stage == "sft" and loaded.planner.config == TINY
    assert torch.equal(loaded.heads["value.bias"], torch.ones(2))
    stages = torch.tensor([0, 1, 0])
    torch.testing.assert_close(
        loaded.planner.decision_logits(*inputs, stages), planner.decision_logits(*inputs, stages)
    )
    with pytest.raises(CheckpointError, match="expected one of"):
        load_planner(checkpoint.path, expect_stage=("rl",))
    with pytest.raises(CheckpointError, match="not a planner checkpoint"):
        load_planner(parent.path)
    data = bytearray(checkpoint.weights_path.read_bytes())
    data[-3] ^= 0xFF
    checkpoint.weights_path.write_bytes(bytes(data))
    with pytest.raises(CheckpointHashMismatchError, match="flipped bit"):
        load_planner(checkpoint.path)


def test_latency_helper_reports_quantiles():
    report = decision_latency(make_planner(), decisions=20, warmup=2, prompt_tokens=6)
    assert report.decisions == 20
    assert 0 < report.p50_ms <= report.p99_ms and report.mean_ms > 0


def test_uint8_images_read_as_fractions_of_255():
    planner = make_planner()
    images, *rest = make_inputs(planner)
    as_bytes = (images * 255).round().to(torch.uint8)
    stages = torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(
        planner.decision_logits(as_bytes, *rest, stages), planner.decision_logits(as_bytes.float() / 255, *rest, stages)
    )
