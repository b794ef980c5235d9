"""The learned actuator residual: trained from excitation logs, exported in the artifact, run at 1 kHz."""

import numpy as np
import pytest

from ogi.calibration.residual import train_residual
from ogi.controllers.fallback import ControlMode
from ogi.controllers.residual import ResidualConfig, ResidualRunner
from ogi.deploy.artifact import ArtifactError, load_artifact
from ogi.deploy.export import export_policy
from ogi.deploy.motorlog import MotorLogWriter, read_motor_log
from ogi.deploy.runtime import Runtime, RuntimeConfig
from ogi.deploy.sim2sim import walk_command
from ogi.robots import get_robot
from ogi.robots.dynamics import nominal_profile

from ..deploy.conftest import PRETRAINED
from ..deploy.test_runtime import FakeBridge, _run
from .test_calibration import HIDDEN, _record


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    go2 = get_robot("go2")
    hidden = nominal_profile(go2).with_values(**HIDDEN)
    folder = tmp_path_factory.mktemp("residual")
    fit_log = _record(folder / "fit.mcap", go2, hidden, 0, 5.0)
    held_log = _record(folder / "held.mcap", go2, hidden, 1, 3.0)
    checkpoint, scores = train_residual([fit_log], "go2", folder / "run", held_out=[held_log], steps=600)
    artifact = export_policy(PRETRAINED, folder / "artifact", residual=checkpoint.path)
    return checkpoint, scores, artifact, fit_log


def test_residual_learns_the_motors_from_logs(trained):
    checkpoint, scores, _, fit_log = trained
    assert scores["held_out_r2"] > 0.6, scores
    lineage = checkpoint.data_manifest
    assert lineage["logs"][0]["sha256"] == read_motor_log(fit_log).sha256
    assert checkpoint.config["kind"] == "actuator_residual"


def test_residual_travels_in_the_artifact_and_is_verified(trained, tmp_path):
    _, _, artifact, _ = trained
    section = artifact.manifest["residual"]
    assert artifact.residual_bytes is not None and section["config"]["num_joints"] == 12
    assert len(section["bound_nm"]) == 12
    import shutil

    copy = tmp_path / "artifact"
    shutil.copytree(artifact.path, copy)
    data = bytearray((copy / "residual.onnx").read_bytes())
    data[-20] ^= 0xFF
    (copy / "residual.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="residual.onnx has sha256"):
        load_artifact(copy)


def test_runner_bounds_and_clips_to_the_torque_limit():
    cfg = ResidualConfig(num_joints=3, history=2)
    limit = np.array([10.0, 10.0, 10.0])
    runner = ResidualRunner(cfg, limit, lambda features: np.full(3, 4.0))
    assert np.all(runner(np.zeros(3)) == 0.0)  # no history yet: nothing added
    runner.observe(np.zeros(3))
    runner.observe(np.zeros(3))
    r = runner(np.array([0.0, 8.0, -9.0]))
    assert np.allclose(r, [4.0, 2.0, 4.0])  # law + residual stays within +-10
    broken = ResidualRunner(cfg, limit, lambda features: np.array([np.nan, 0.0, 0.0]))
    broken.observe(np.zeros(3))
    broken.observe(np.zeros(3))
    assert np.isnan(broken(np.zeros(3))).any()


def test_runtime_adds_the_residual_only_while_the_policy_drives(trained):
    _, _, artifact, _ = trained
    bridge = FakeBridge()
    rt = Runtime(artifact, bridge, RuntimeConfig(zero_torque_s=0.1, ramp_s=0.2))
    rt.t0 = 0.0
    _run(rt, bridge, 0.0, 0.25)
    assert rt.phase == "ramp" and rt.residual_ticks == 0
    _run(rt, bridge, 0.25, 0.6)
    assert rt.phase == "running" and rt.residual_ticks > 0
    ticks = rt.residual_ticks
    rt.trip("test", ControlMode.CROUCH)
    _run(rt, bridge, 0.6, 0.7)
    assert rt.residual_ticks == ticks
    report = rt.report()
    assert report["residual"] and report["residual_p99_ms"] is not None and report["residual_dropped"] is None


def test_a_non_finite_residual_is_dropped_for_the_rest_of_the_run(trained):
    _, _, artifact, _ = trained
    bridge = FakeBridge()
    rt = Runtime(artifact, bridge, RuntimeConfig(zero_torque_s=0.1, ramp_s=0.2))
    rt.t0 = 0.0
    rt.residual._run = lambda features: np.full(12, np.nan)
    _run(rt, bridge, 0.0, 0.6)
    assert rt.residual_dropped is not None and "non-finite" in rt.residual_dropped
    assert all(np.all(np.isfinite(c.tau)) for c in bridge.sent)
    off = Runtime(artifact, FakeBridge(), RuntimeConfig(use_residual=False))
    assert off.residual is None


def test_runtime_logs_what_it_sent_and_heard(trained, tmp_path):
    _, _, artifact, _ = trained
    bridge = FakeBridge()
    with MotorLogWriter(tmp_path / "run.mcap", get_robot("go2"), tick_hz=1000.0, meta={"routine": "walk"}) as log:
        rt = Runtime(artifact, bridge, RuntimeConfig(zero_torque_s=0.1, ramp_s=0.2), log=log)
        rt.t0 = 0.0
        _run(rt, bridge, 0.0, 0.5)
    read = read_motor_log(tmp_path / "run.mcap")
    assert len(read.states["sequence"]) == 500 and len(read.commands["q"]) == len(bridge.sent)
    assert np.allclose(read.commands["tau"][-1], bridge.sent[-1].tau)


def test_walking_with_the_residual_on_the_model_it_was_not_trained_for_still_stands(trained):
    _, _, artifact, _ = trained
    run = walk_command(artifact, (0.4, 0.0, 0.0), seconds=2.0, settle_s=0.5)
    assert not run["fell"] and run["residual_p99_ms"] is not None and run["residual_mean_abs_nm"] > 0.0
