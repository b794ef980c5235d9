"""Motor logs: what a controller sent and heard, to MCAP and back; a crash keeps what was flushed."""

import shutil

import numpy as np
import pytest

from ogi.deploy.bridge import MotorCommand, RobotState
from ogi.deploy.motorlog import MotorLogWriter, read_motor_log
from ogi.replay.format import RecordingError
from ogi.robots import get_robot


def _state(i: int, n: int = 12) -> RobotState:
    return RobotState(
        sequence=i,
        received_s=100.0 + i * 1e-3,
        quat_wxyz=np.array([1.0, 0, 0, 0]),
        gyro_body=np.zeros(3),
        accel_body=np.array([0, 0, 9.81]),
        q=np.full(n, 0.01 * i),
        dq=np.full(n, -0.1 * i),
        tau_est=np.zeros(n),
        foot_force=np.zeros(4),
    )


def _command(i: int, n: int = 12) -> MotorCommand:
    z = np.zeros(n)
    return MotorCommand(q=np.full(n, 0.5 + i), dq=z, kp=np.full(n, 40.0), kd=np.ones(n), tau=z, source_sequence=i)


def test_round_trip_and_robot_clock(tmp_path):
    robot = get_robot("go2")
    path = tmp_path / "log.mcap"
    with MotorLogWriter(path, robot, tick_hz=1000.0, meta={"routine": "test"}) as log:
        for i in range(450):
            log.state(_state(i))
            log.state(_state(i))  # read twice: logged once
            log.command(100.0 + i * 1e-3 + 2e-4, _command(i))  # sent 0.2 ms after its state arrived
        log.event("middle", 0.2, 200)
    read = read_motor_log(path)
    assert not read.truncated and read.info["routine"] == "test" and read.info["robot"] == "go2"
    assert read.states["q"].shape == (450, 12) and read.commands["kp"].shape == (450, 12)
    assert np.array_equal(read.states["sequence"], np.arange(450))
    assert np.allclose(read.commands["q"][7], 7.5)
    assert np.allclose(read.state_time_s()[:3], [0.0, 0.001, 0.002])
    assert np.allclose(read.command_time_s()[:3], [0.0002, 0.0012, 0.0022])
    assert read.events == [{"name": "middle", "controller_s": 0.2, "sequence": 200}]


def test_a_log_whose_writer_died_reads_up_to_its_last_flush(tmp_path):
    robot = get_robot("go2")
    path = tmp_path / "log.mcap"
    log = MotorLogWriter(path, robot, tick_hz=1000.0, meta={"routine": "test"})
    for i in range(2000):
        log.state(_state(i))
    log._file.flush()
    shutil.copy(path, tmp_path / "crashed.mcap")  # the file as a killed process leaves it: no footer
    log.close()
    read = read_motor_log(tmp_path / "crashed.mcap")
    assert read.truncated
    assert 0 < len(read.states["sequence"]) <= 2000
    assert np.array_equal(read.states["sequence"], np.arange(len(read.states["sequence"])))


def test_corrupt_and_foreign_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(RecordingError, match="not a motor log"):
        read_motor_log(tmp_path / "junk.mcap")
    with pytest.raises(RecordingError, match="no such motor log"):
        read_motor_log(tmp_path / "missing.mcap")
