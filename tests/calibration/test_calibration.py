"""Excitation, calibration with mujoco.sysid and the actuator residual, end to end on a robot that is not its model."""

import json
from pathlib import Path

import numpy as np
import pytest

from ogi.calibration.calibrate import calibrate, load_calibration
from ogi.calibration.identify import CalibrationError, fit
from ogi.deploy.excite import ExciteConfig, Exciter, excitation_targets, run_stepped
from ogi.deploy.motorlog import MotorLogWriter, read_motor_log
from ogi.deploy.sim2sim import _SteppedBridge
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig
from ogi.robots import get_robot
from ogi.robots.dynamics import load_profile, nominal_profile

HIDDEN = {
    "hip.armature": 0.025,
    "thigh.armature": 0.02,
    "calf.armature": 0.04,
    "hip.damping": 0.4,
    "thigh.damping": 0.3,
    "calf.damping": 0.6,
    "hip.frictionloss": 0.5,
    "thigh.frictionloss": 0.4,
    "calf.frictionloss": 0.7,
    "strength": 0.75,
    "delay_ms": 5.0,
}


@pytest.fixture(scope="module")
def go2():
    return get_robot("go2")


def _record(path: Path, robot, profile, seed: int, seconds: float = 6.0) -> Path:
    sim = SimRobot(robot, SimRobotConfig(start="hung", dynamics=profile))
    with MotorLogWriter(path, robot, tick_hz=1000.0, meta={"routine": "excite"}) as log:
        run_stepped(Exciter(robot, _SteppedBridge(sim), ExciteConfig(seconds=seconds, seed=seed), log), sim)
    return path


@pytest.fixture(scope="module")
def logs(go2, tmp_path_factory):
    hidden = nominal_profile(go2).with_values(**HIDDEN)
    folder = tmp_path_factory.mktemp("logs")
    return _record(folder / "fit.mcap", go2, hidden, 0), _record(folder / "held.mcap", go2, hidden, 1, 4.0)


def test_excitation_stays_in_its_room_and_starts_at_the_pose(go2):
    cfg = ExciteConfig(seconds=10.0)
    t = np.arange(-0.1, 10.1, 0.001)
    q = excitation_targets(go2, cfg, t)
    pose, limits = np.array(go2.default_pose), np.array(go2.joint_limits)
    assert np.allclose(q[0], pose) and np.allclose(q[-1], pose)
    assert np.all(np.abs(q - pose) <= cfg.amplitude_rad + 1e-9)
    assert np.all(q >= limits[:, 0] + cfg.limit_margin_rad - 1e-9) and np.all(
        q <= limits[:, 1] - cfg.limit_margin_rad + 1e-9
    )
    assert np.ptp(q, axis=0).min() > 0.2  # every joint moves
    with pytest.raises(ValueError, match="f_low_hz"):
        ExciteConfig(f_low_hz=5.0, f_high_hz=4.0)


def test_excitation_log_has_its_phases_and_both_streams(logs):
    log = read_motor_log(logs[0])
    assert [e["name"] for e in log.events] == ["zero_torque", "ramp", "hold", "excite", "hold_after", "done"]
    assert len(log.states["sequence"]) == len(log.commands["q"]) > 9000
    assert not log.truncated


def test_calibration_recovers_the_hidden_profile(go2, logs):
    result = fit([read_motor_log(logs[0])], go2, nominal_profile(go2), held_out_logs=[read_motor_log(logs[1])])
    for name, truth in HIDDEN.items():
        if name == "delay_ms":
            assert abs(result.values[name] - truth) < 1.0
        else:
            assert abs(result.values[name] - truth) / truth < 0.1, (name, result.values[name], truth)
    assert result.traj_error_reduction > 0.5
    assert result.held_out_rms_after_rad < result.held_out_rms_before_rad


def test_calibrate_writes_a_hashed_calibrated_robot(go2, logs, tmp_path):
    out = tmp_path / "cal"
    report = calibrate([logs[0]], "go2", out, held_out=[logs[1]], max_iters=3)
    assert {p.name for p in out.iterdir()} == {"robot.toml", "robot.xml", "report.json", "report.md", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["lineage"]["logs"][0]["sha256"] == read_motor_log(logs[0]).sha256
    profile, _ = load_calibration(out)
    assert profile.strength == pytest.approx(report["fitted"]["strength"])
    assert load_profile(out / "robot.toml").flat() == profile.flat()
    assert "<joint" in (out / "robot.xml").read_text()
    with pytest.raises(CalibrationError, match="not empty"):
        calibrate([logs[0]], "go2", out)
    (out / "robot.toml").write_text((out / "robot.toml").read_text().replace("strength", "strength = 1.0\n#"))
    with pytest.raises(CalibrationError, match="sha256 differs"):
        load_calibration(out)


def test_calibration_refuses_logs_it_cannot_use(go2, logs, tmp_path):
    with MotorLogWriter(tmp_path / "walk.mcap", go2, tick_hz=1000.0, meta={"routine": "walk"}):
        pass
    with pytest.raises(CalibrationError, match="not an excitation log"):
        fit([read_motor_log(tmp_path / "walk.mcap")], go2, nominal_profile(go2))
    with pytest.raises(CalibrationError, match="not 'biped'"):
        fit([read_motor_log(logs[0])], get_robot("biped"), nominal_profile(go2))


def test_excitation_in_real_time_on_a_live_bridge(go2, tmp_path):
    from ogi.deploy.bridge import SimBridge
    from ogi.deploy.excite import run_realtime

    sim = SimRobot(go2, SimRobotConfig(start="hung"))
    cfg = ExciteConfig(seconds=1.0, zero_torque_s=0.1, ramp_s=0.2, hold_s=0.1)
    sim.start()
    try:
        with MotorLogWriter(tmp_path / "rt.mcap", go2, tick_hz=1000.0, meta={"routine": "excite"}) as log:
            exciter = Exciter(go2, SimBridge(sim), cfg, log)
            run_realtime(exciter)
    finally:
        sim.stop()
    assert exciter.done
    log = read_motor_log(tmp_path / "rt.mcap")
    t = log.command_time_s()
    assert np.all(np.isfinite(t)) and np.all(np.diff(t) > -0.01)  # commands on the robot's clock, in order
    assert 1.0 < t[-1] - t[0] < 3.0
