"""The student actor: depth image through the CNN, recurrent protocol, learning, ONNX export, clear errors."""

import pytest
import torch

from ogi.policies import ActorConfig, EmpiricalNormalizer, make_actor
from ogi.policies.student import StudentActor
from ogi.validation import ConfigError

PROPRIO, ROWS, COLS, ACT = 7, 3, 4, 2
OBS = PROPRIO + ROWS * COLS


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def student(depth: bool = True) -> StudentActor:
    torch.manual_seed(0)
    cfg = ActorConfig(
        kind="student",
        hidden_sizes=(16,),
        recurrent_size=12,
        depth_height=ROWS if depth else 0,
        depth_width=COLS if depth else 0,
        depth_channels=(4, 8),
        depth_features=6,
    )
    actor = make_actor(OBS, ACT, cfg)
    with torch.no_grad():
        actor.head[-1].weight.mul_(100.0)  # O(1) means, so the tolerances below mean something
    return actor


def test_make_actor_builds_the_student_with_or_without_the_image():
    with_depth, without = student(True), student(False)
    assert isinstance(with_depth, StudentActor) and with_depth.depth_encoder is not None
    assert with_depth.proprio_dim == PROPRIO and with_depth.state_shapes() == ((12,),)
    assert without.depth_encoder is None and without.proprio_dim == OBS


def test_the_depth_image_changes_the_action_and_only_through_the_encoder():
    actor = student()
    obs = torch.randn(5, OBS)
    other = obs.clone()
    other[:, PROPRIO:] += 1.0
    state = actor.initial_state(5)
    a, _ = actor(obs, state)
    b, _ = actor(other, state)
    assert (a - b).abs().max() > 1e-3
    # the CNN sees the trailing block as rows x cols: pixel (r, c) is obs[PROPRIO + r * COLS + c]
    image = obs[:, PROPRIO:].reshape(5, 1, ROWS, COLS)
    direct = actor.depth_encoder.project(actor.depth_encoder.convs(image).flatten(1))
    torch.testing.assert_close(actor.depth_encoder(obs[:, PROPRIO:]), direct)


def test_forward_sequence_equals_stepping_forward_with_resets():
    actor = student()
    steps, n = 6, 4
    obs = torch.randn(steps, n, OBS)
    starts = torch.zeros(steps, n, dtype=torch.bool)
    starts[2, 1] = starts[4, 3] = starts[5, 1] = True
    state0 = (torch.randn(n, 12),)
    sequence = actor.forward_sequence(obs, state0, starts)
    state, stepped = state0, []
    for t in range(steps):
        state = actor.reset_state(state, starts[t])
        mean, state = actor(obs[t], state)
        stepped.append(mean)
    torch.testing.assert_close(sequence, torch.stack(stepped))
    # the reset really matters: without it env 1 differs from step 2 on
    no_reset = actor.forward_sequence(obs, state0, torch.zeros_like(starts))
    assert (no_reset[2:, 1] - sequence[2:, 1]).abs().max() > 1e-4


def test_the_student_learns_a_target_that_only_the_depth_image_shows():
    torch.manual_seed(1)
    actor = student()
    optimizer = torch.optim.Adam(actor.parameters(), lr=1e-2)
    obs = torch.randn(4, 16, OBS)
    target = obs[..., PROPRIO:].mean(-1, keepdim=True).expand(-1, -1, ACT)  # mean depth -> both actions
    starts = torch.zeros(4, 16, dtype=torch.bool)
    losses = []
    for _ in range(60):
        mean = actor.forward_sequence(obs, actor.initial_state(16), starts)
        loss = (mean - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_the_student_exports_to_onnx_and_runs_the_same(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from ogi.deploy.export import export_onnx

    actor = student().eval()
    normalizer = EmpiricalNormalizer(OBS)
    normalizer.update(torch.randn(64, OBS) * 2 + 1)
    path = tmp_path / "student.onnx"
    export_onnx(actor, normalizer, OBS, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = actor.initial_state(1)
    onnx_state = state[0].numpy()
    for _ in range(5):
        obs = torch.randn(1, OBS)
        with torch.no_grad():
            expected, state = actor(normalizer(obs), state)
        action, onnx_state = session.run(None, {"obs": obs.numpy(), "state_0": onnx_state})
        torch.testing.assert_close(torch.from_numpy(action), expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(torch.from_numpy(onnx_state), state[0], atol=1e-5, rtol=1e-4)


def test_bad_student_configs_name_the_field():
    with pytest.raises(ConfigError, match="actor.depth_height = 3 and actor.depth_width = 0"):
        ActorConfig(kind="student", depth_height=3)
    with pytest.raises(ConfigError, match="actor.depth_features"):
        ActorConfig(kind="student", depth_features=0)
    with pytest.raises(ValueError, match="12 pixels leave no proprioception"):
        make_actor(ROWS * COLS, ACT, ActorConfig(kind="student", depth_height=ROWS, depth_width=COLS))
