import dataclasses
import math

import pytest
import torch

from ogi.policies import (
    ACTIVATIONS,
    ACTOR_KINDS,
    ActorConfig,
    Critic,
    CriticConfig,
    TransformerActor,
    build_mlp,
    make_actor,
)
from ogi.validation import ConfigError

OBS_DIM, ACT_DIM, N_ENVS, T = 5, 3, 6, 12


def small_config(kind: str) -> ActorConfig:
    return ActorConfig(
        kind=kind, hidden_sizes=(16, 8), recurrent_size=12, init_std=0.5, window=4, model_dim=16, heads=2, layers=2
    )


@pytest.fixture(params=ACTOR_KINDS)
def actor(request):
    torch.manual_seed(0)
    actor = make_actor(OBS_DIM, ACT_DIM, small_config(request.param))
    # undo the 0.01 output gain so the means are O(1) and an absolute tolerance of 1e-6 means something
    with torch.no_grad():
        actor.head[-1].weight.mul_(100.0)
    return actor


def advance(actor, state, steps: int, generator: torch.Generator):
    """Run a few steps so the state is no longer all zeros."""
    with torch.no_grad():
        for _ in range(steps):
            _, state = actor(torch.randn(N_ENVS, OBS_DIM, generator=generator), state)
    return state


def test_shapes_and_log_std(actor):
    state = actor.initial_state(N_ENVS)
    assert all(s.shape[0] == N_ENVS and not s.any() for s in state)
    mean, new_state = actor(torch.randn(N_ENVS, OBS_DIM), state)
    assert mean.shape == (N_ENVS, ACT_DIM)
    assert [s.shape for s in new_state] == [s.shape for s in state]
    assert actor.log_std.shape == (ACT_DIM,)
    torch.testing.assert_close(actor.log_std.detach(), torch.full((ACT_DIM,), math.log(0.5)))
    means = actor.forward_sequence(torch.randn(T, N_ENVS, OBS_DIM), state, torch.zeros(T, N_ENVS, dtype=torch.bool))
    assert means.shape == (T, N_ENVS, ACT_DIM)
    assert torch.isfinite(means).all()


def test_mlp_is_not_recurrent():
    mlp = make_actor(OBS_DIM, ACT_DIM, small_config("mlp"))
    assert not mlp.is_recurrent
    assert mlp.initial_state(N_ENVS) == ()
    obs = torch.randn(N_ENVS, OBS_DIM)
    mean, state = mlp(obs, ())
    assert state == ()
    assert mlp.reset_state((), torch.ones(N_ENVS, dtype=torch.bool)) == ()
    for kind in ("gru", "lstm", "transformer"):
        assert make_actor(OBS_DIM, ACT_DIM, small_config(kind)).is_recurrent


@pytest.mark.parametrize("eval_mode", [False, True])
def test_forward_sequence_equals_stepwise(actor, eval_mode):
    generator = torch.Generator().manual_seed(1)
    state0 = advance(actor, actor.initial_state(N_ENVS), 3, generator)
    obs = torch.randn(T, N_ENVS, OBS_DIM, generator=generator)
    starts = torch.rand(T, N_ENVS, generator=generator) < 0.2
    starts[0, 0] = starts[T // 2, 1] = True
    # collection: no gradients (and, in eval mode, the transformer's fused inference path)
    actor.train(not eval_mode)
    stepwise = []
    with torch.no_grad():
        state = state0
        for t in range(T):
            state = actor.reset_state(state, starts[t])
            mean, state = actor(obs[t], state)
            stepwise.append(mean)
    actor.train()
    sequence = actor.forward_sequence(obs, state0, starts)
    # in eval mode without gradients nn.TransformerEncoderLayer switches to PyTorch's fused inference kernel,
    # the same math in another summation order; in train mode (dropout is 0) the two paths are identical
    fused = eval_mode and isinstance(actor, TransformerActor)
    torch.testing.assert_close(sequence.detach(), torch.stack(stepwise), atol=1e-5 if fused else 1e-6, rtol=0.0)


def test_reset_touches_only_done_rows(actor):
    generator = torch.Generator().manual_seed(2)
    state = advance(actor, actor.initial_state(N_ENVS), 5, generator)
    before = tuple(s.clone() for s in state)
    done = torch.tensor([True, False, False, True, False, False])
    reset = actor.reset_state(state, done)
    for original, kept, fresh, after in zip(before, state, actor.initial_state(N_ENVS), reset):
        assert torch.equal(kept, original), "the input state must not be modified"
        assert torch.equal(after[~done], original[~done])
        assert torch.equal(after[done], fresh[done])
    obs = torch.randn(N_ENVS, OBS_DIM, generator=generator)
    with torch.no_grad():
        mean_reset, _ = actor(obs, reset)
        mean_kept, _ = actor(obs, state)
        mean_fresh, _ = actor(obs, actor.initial_state(N_ENVS))
    assert torch.equal(mean_reset[~done], mean_kept[~done])
    assert torch.equal(mean_reset[done], mean_fresh[done])
    if actor.is_recurrent:
        assert not torch.allclose(mean_kept[done], mean_fresh[done]), "the reset must change the done rows"


def test_gradients_reach_every_parameter(actor):
    generator = torch.Generator().manual_seed(3)
    state0 = actor.initial_state(N_ENVS)
    obs = torch.randn(T, N_ENVS, OBS_DIM, generator=generator)
    starts = torch.rand(T, N_ENVS, generator=generator) < 0.1
    means = actor.forward_sequence(obs, state0, starts)
    # a random projection of the means, so no path's gradient cancels in a plain sum
    (means * torch.randn(means.shape, generator=generator)).sum().backward()
    for name, parameter in actor.named_parameters():
        if name == "log_std":  # the mean does not depend on it; PPO's log-prob does
            assert parameter.grad is None
            continue
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ACTOR_KINDS)
def test_output_layer_is_small_at_initialisation(kind):
    actor = make_actor(OBS_DIM, ACT_DIM, small_config(kind))
    state = actor.initial_state(N_ENVS)
    with torch.no_grad():
        mean, _ = actor(torch.randn(N_ENVS, OBS_DIM), state)
    assert mean.abs().max() < 0.5


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation):
    net = build_mlp(4, (8,), 2, activation, output_gain=1.0)
    assert net(torch.randn(3, 4)).shape == (3, 2)


def test_critic_shapes():
    critic = Critic(7, CriticConfig(hidden_sizes=(16,)))
    assert critic(torch.randn(N_ENVS, 7)).shape == (N_ENVS,)
    assert critic(torch.randn(T, N_ENVS, 7)).shape == (T, N_ENVS)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: ActorConfig(kind="rnn"), "actor.kind"),
        (lambda: ActorConfig(hidden_sizes=(64, 0)), r"actor.hidden_sizes\[1\]"),
        (lambda: ActorConfig(hidden_sizes=[64]), "actor.hidden_sizes"),
        (lambda: ActorConfig(recurrent_size=True), "actor.recurrent_size"),
        (lambda: ActorConfig(activation="sigmoid"), "actor.activation"),
        (lambda: ActorConfig(init_std=0.0), "actor.init_std"),
        (lambda: ActorConfig(init_std=float("nan")), "actor.init_std"),
        (lambda: ActorConfig(model_dim=30, heads=4), "actor.model_dim"),
        (lambda: ActorConfig(layers=0), "actor.layers"),
        (lambda: CriticConfig(hidden_sizes=(-1,)), "critic.hidden_sizes"),
        (lambda: CriticConfig(activation="swish"), "critic.activation"),
    ],
)
def test_bad_config_names_the_field(make, field):
    with pytest.raises(ConfigError, match=field):
        make()


def test_config_replace_keeps_original():
    base = ActorConfig()
    changed = dataclasses.replace(base, kind="lstm")
    assert base.kind == "gru" and changed.kind == "lstm"
