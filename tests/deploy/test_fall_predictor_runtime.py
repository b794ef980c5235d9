"""The fall predictor travels in the artifact, runs in the runtime every policy step, and `recover` hands back."""

import shutil

import numpy as np
import pytest
import torch

from ogi import checkpoints as ckpt
from ogi.controllers.fallback import ControlMode
from ogi.deploy.artifact import ArtifactError, FallPredictorSession, load_artifact
from ogi.deploy.export import export_policy
from ogi.deploy.runtime import Runtime, RuntimeConfig
from ogi.policies.fall_predictor import FallPredictor, FallPredictorConfig
from ogi.training.fall_predictor import FallPredictorTrainConfig, save_predictor

from .conftest import PRETRAINED
from .test_runtime import FakeBridge, _run


def _predictor(obs_dim: int, seed: int = 0) -> FallPredictor:
    torch.manual_seed(seed)
    predictor = FallPredictor(FallPredictorConfig(obs_dim=obs_dim, window=5))
    predictor.set_normalization(torch.randn(obs_dim) * 0.1, torch.rand(obs_dim) + 0.5)
    with torch.no_grad():
        predictor.net[-1].bias.fill_(-4.0)  # a calm robot reads as safe; tests swap in a session that says otherwise
    return predictor.eval()


def _save(out, predictor, policy_checkpoint):
    return save_predictor(
        out,
        predictor,
        FallPredictorTrainConfig(),
        policy_checkpoint=policy_checkpoint,
        metrics={"auroc": 0.9},
        train_stats={},
        samples=1,
    )


@pytest.fixture(scope="module")
def with_predictor(tmp_path_factory):
    """The shipped policy exported with a (randomly initialized) predictor saved beside it."""
    tmp = tmp_path_factory.mktemp("predictor")
    policy = ckpt.resolve_checkpoint(PRETRAINED)
    loaded = ckpt.load_checkpoint(policy)
    plain = export_policy(PRETRAINED, tmp / "plain")
    predictor = _predictor(plain.obs_size)
    _save(tmp / "predictor", predictor, loaded.checkpoint)
    artifact = export_policy(PRETRAINED, tmp / "artifact", fall_predictor=tmp / "predictor")
    return artifact, predictor, tmp


def test_the_exported_predictor_computes_what_torch_computes(with_predictor):
    artifact, predictor, _ = with_predictor
    section = artifact.manifest["fall_predictor"]
    assert section["window"] == 5 and section["obs_dim"] == artifact.obs_size
    session = FallPredictorSession(artifact)
    window = predictor.new_window(1)
    rng = np.random.default_rng(0)
    for step in range(12):
        obs = rng.normal(0.0, 1.0, artifact.obs_size).astype(np.float32)
        got = session.step(obs)
        want = float(predictor.step(window, obs[None])[0])
        assert abs(got - want) < 1e-5, step
    session.reset()
    predictor.reset_window(window, np.array([True]))
    obs = np.ones(artifact.obs_size, np.float32)
    assert abs(session.step(obs) - float(predictor.step(window, obs[None])[0])) < 1e-5


def test_a_predictor_trained_beside_another_policy_is_refused(with_predictor, tmp_path):
    artifact, predictor, tmp = with_predictor
    other = ckpt.load_checkpoint(ckpt.resolve_checkpoint(PRETRAINED.parent / "go2_walk_omni")).checkpoint
    _save(tmp_path / "foreign", predictor, other)
    with pytest.raises(ArtifactError, match="trained beside policy checkpoint"):
        export_policy(PRETRAINED, tmp_path / "out", fall_predictor=tmp_path / "foreign")


def test_a_damaged_predictor_file_is_refused(with_predictor, tmp_path):
    artifact, _, _ = with_predictor
    copy = tmp_path / "artifact"
    shutil.copytree(artifact.path, copy)
    data = bytearray((copy / "fall_predictor.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "fall_predictor.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="fall_predictor.onnx has sha256"):
        load_artifact(copy)
    (copy / "fall_predictor.onnx").unlink()
    with pytest.raises(ArtifactError, match="fall predictor file named by the manifest is missing"):
        load_artifact(copy)


def test_exporting_without_a_predictor_removes_a_stale_one(with_predictor):
    artifact, _, tmp = with_predictor
    out = tmp / "reexport"
    export_policy(PRETRAINED, out, fall_predictor=tmp / "predictor")
    assert (out / "fall_predictor.onnx").exists()
    again = export_policy(PRETRAINED, out)
    assert "fall_predictor" not in again.manifest and not (out / "fall_predictor.onnx").exists()


class FixedPredictor:
    """A stand-in predictor session that says what the test wants."""

    def __init__(self, probability: float):
        self.probability = probability
        self.resets = 0

    def step(self, obs):
        return self.probability

    def reset(self):
        self.resets += 1


def _runtime(artifact, **cfg):
    bridge = FakeBridge()
    rt = Runtime(artifact, bridge, RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0, **cfg))
    rt.t0 = 0.0
    return rt, bridge


def test_the_runtime_runs_the_predictor_and_a_predicted_fall_crouches(with_predictor):
    artifact, _, _ = with_predictor
    rt, bridge = _runtime(artifact)
    assert rt.predictor is not None
    _run(rt, bridge, 0.0, 2.6)
    assert rt.mode is ControlMode.POLICY and rt.last_fall_probability is not None
    rt.predictor = FixedPredictor(0.95)
    _run(rt, bridge, 2.6, 2.7, seq0=9000)
    (event,) = rt.events
    assert event.cause == "fall_predicted" and rt.mode is ControlMode.CROUCH
    report = rt.report()
    assert report["fall_predictor"] is True and report["fall_probability_max"] >= 0.95
    # without `recover` the crouch holds however calm the robot is
    rt.predictor.probability = 0.0
    _run(rt, bridge, 2.7, 5.0, seq0=20000)
    assert rt.mode is ControlMode.CROUCH


def test_recover_hands_back_after_the_stable_time_and_not_after_a_damping_trip(with_predictor):
    artifact, _, _ = with_predictor
    rt, bridge = _runtime(artifact, recover=True)
    _run(rt, bridge, 0.0, 2.6)
    rt.predictor = FixedPredictor(0.95)
    _run(rt, bridge, 2.6, 2.65, seq0=9000)
    assert rt.mode is ControlMode.CROUCH
    rt.predictor.probability = 0.0
    stable_s = rt.cfg.supervisor.rearm_stable_s
    _run(rt, bridge, 2.65, 2.65 + stable_s - 0.1, seq0=20000)
    assert rt.mode is ControlMode.CROUCH  # not yet stable long enough
    _run(rt, bridge, 2.65 + stable_s - 0.1, 2.65 + stable_s + 0.2, seq0=40000)
    assert rt.mode is ControlMode.POLICY
    assert [e.cause for e in rt.events] == ["fall_predicted", "rearm"]
    assert rt.predictor.resets == 1  # the window starts over with the policy
    rt.trip("operator", ControlMode.DAMPING)
    _run(rt, bridge, 4.0, 6.0, seq0=60000)
    assert rt.mode is ControlMode.DAMPING


def test_the_predictor_can_be_switched_off(with_predictor):
    artifact, _, _ = with_predictor
    rt, _ = _runtime(artifact, use_fall_predictor=False)
    assert rt.predictor is None and rt.report()["fall_predictor"] is False
