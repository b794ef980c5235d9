"""Training the 1 kHz actuator residual (`ogi.controllers.residual`) from excitation logs: `ogi train-residual`.

Each logged tick k of an excitation says what was asked of the motors (the law's torque from the command sent,
`tau_sent`) and how the joints moved. The reference model (the hung robot's identification model,
`ogi.calibration.identify`, with the reference's joint dynamics and motor strength, no delay) run for
TARGET_HORIZON_TICKS from the measured state under the commands that followed gives the velocity the reference
expected; the torque the reference would have needed to move as the robot did is
`tau_eff = tau_sent + (M + dt D) (dq_measured - dq_expected) / (h dt)`. Over one tick the velocity difference would
be mostly encoder noise, which the net would learn to echo back as torque (negative damping); over ten, with the
velocities the targets read averaged over a few ticks, it is the motors.
Turned round, that is an inverse actuator model: to have the reference feel `tau_eff`, send `tau_sent`. The
residual learns `tau_sent - tau_eff` from (`tau_eff`, recent joint velocities), and at run time is asked with
the law's torque in `tau_eff`'s place. Logs held out judge it (R^2 of the residual torque).

The result is a checkpoint in the one checkpoint format, its lineage naming every log and the reference.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch
from mujoco import rollout as mj_rollout

from ogi import checkpoints as ckpt
from ogi.calibration.identify import CalibrationError, identification_spec
from ogi.controllers.residual import KIND, ResidualConfig, ResidualNet, features
from ogi.deploy.motorlog import MotorLog, read_motor_log
from ogi.robots import RobotSpec, get_robot
from ogi.robots.dynamics import DynamicsProfile, nominal_profile

TARGET_HORIZON_TICKS = 10  # the reference runs this long from each state: a 1-tick difference amplifies noise
SMOOTH_TICKS = 2  # velocities the targets read are means over this many ticks either side


@dataclass
class ResidualData:
    x: np.ndarray  # (N, J, F) float32
    y: np.ndarray  # (N, J) residual torque, N m


def log_dataset(log: MotorLog, robot: RobotSpec, reference: DynamicsProfile, cfg: ResidualConfig) -> ResidualData:
    """(features, target residual) for every tick of one excitation log's hold and excite phases."""
    if log.info.get("robot") != robot.name or log.info.get("routine") != "excite":
        raise CalibrationError(f"{log.path}: not an excitation log of robot '{robot.name}'")
    dt = 1.0 / log.tick_hz
    model = identification_spec(robot, reference, dt).compile()
    data = mujoco.MjData(model)
    seq = log.states["sequence"]
    names = [e["name"] for e in log.events]
    if "hold" not in names:
        raise CalibrationError(f"{log.path}: no hold or excite phase (phases: {names})")
    first = log.events[names.index("hold")]["sequence"]
    last = log.events[names.index("done")]["sequence"] if "done" in names else int(seq[-1])
    # the command sent from each state (the log's commands name their source state)
    by_source = {int(s): i for i, s in enumerate(log.commands["source_sequence"])}
    cmd_of = np.array([by_source.get(int(s), -1) for s in seq])
    h = TARGET_HORIZON_TICKS
    steady = np.r_[seq[1:] == seq[:-1] + 1, False]  # the next state is the next tick
    rows = [
        i
        for i in range(max(cfg.history, SMOOTH_TICKS), len(seq) - h - SMOOTH_TICKS)
        if first <= seq[i] and seq[i + h] < last and steady[i : i + h].all() and (cmd_of[i : i + h] >= 0).all()
    ]
    if not rows:
        raise CalibrationError(f"{log.path}: no consecutive ticks with commands in its hold and excite phases")
    rows = np.array(rows)
    q, dq = log.states["q"], log.states["dq"]
    q_des = log.commands["q"][cmd_of[rows]]
    kp, kd, limit = np.asarray(robot.kp), np.asarray(robot.kd), np.asarray(robot.torque_limit)
    tau_sent = np.clip(kp * (q_des - q[rows]) - kd * dq[rows], -limit, limit)
    # the reference run for h ticks from each measured state under the commands that followed it; its start
    # velocity is smoothed over a few ticks either side, so encoder noise does not teach the net to echo it
    qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in robot.joint_names])
    dadr = np.array([model.jnt_dofadr[model.joint(j).id] for j in robot.joint_names])
    window = np.arange(-SMOOTH_TICKS, SMOOTH_TICKS + 1)
    dq_start = dq[rows[:, None] + window[None]].mean(axis=1)
    size = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
    states = np.zeros((len(rows), size))
    mass = np.zeros((len(rows), model.nv, model.nv))
    for n, i in enumerate(rows):
        data.qpos[qadr], data.qvel[dadr] = q[i], dq_start[n]
        mujoco.mj_forward(model, data)
        mujoco.mj_getState(model, data, states[n], mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
        mujoco.mj_fullM(model, data, mass[n])
    ctrl = log.commands["q"][cmd_of[rows[:, None] + np.arange(h)[None]]]  # (N, h, J): actuators in action order
    nxt, _ = mj_rollout.rollout(model, [mujoco.MjData(model) for _ in range(2)], states, ctrl)
    expected = nxt[:, -1, 1 + model.nq + dadr]
    measured = dq[rows[:, None] + h + window[None]].mean(axis=1)
    mass_eff = mass[:, dadr][:, :, dadr] + dt * np.diag(model.dof_damping[dadr])
    # the mean torque over the window the reference lacked to move as the robot did
    e = np.einsum("nij,nj->ni", mass_eff, measured - expected) / (h * dt)
    tau_eff = tau_sent + e
    history = np.stack([dq[rows - k] for k in range(cfg.history)], axis=1)  # (N, HISTORY, J) newest first
    bound = cfg.bound_fraction * limit
    return ResidualData(x=features(cfg, tau_eff, limit, history), y=np.clip(tau_sent - tau_eff, -bound, bound))


def _concat(parts: Sequence[ResidualData]) -> ResidualData:
    return ResidualData(x=np.concatenate([p.x for p in parts]), y=np.concatenate([p.y for p in parts]))


def r_squared(net: ResidualNet, data: ResidualData) -> tuple[float, float]:
    """(R^2, RMS error N m) of the net's residuals on data."""
    with torch.no_grad():
        pred = net(torch.as_tensor(data.x)).numpy()
    err = pred - data.y
    return float(1.0 - np.sum(err**2) / max(np.sum((data.y - data.y.mean()) ** 2), 1e-12)), float(
        np.sqrt(np.mean(err**2))
    )


def train_residual(
    log_paths: Sequence[Path],
    robot_name: str,
    out: Path,
    *,
    held_out: Sequence[Path] = (),
    reference: DynamicsProfile | None = None,
    reference_source: dict[str, Any] | None = None,
    steps: int = 3000,
    batch: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    cfg: ResidualConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[ckpt.Checkpoint, dict[str, float]]:
    """Train on the logs, judge on the held-out ones, save a checkpoint under `out`; (checkpoint, scores)."""
    robot = get_robot(robot_name)
    cfg = cfg or ResidualConfig(num_joints=robot.num_joints)
    reference = reference or nominal_profile(robot)
    if reference.delay_ms:
        reference = reference.with_values(delay_ms=0.0)  # the residual cannot see a delay: it models the rest
    logs = [read_motor_log(p) for p in log_paths]
    held_logs = [read_motor_log(p) for p in held_out]
    train = _concat([log_dataset(log, robot, reference, cfg) for log in logs])
    held = _concat([log_dataset(log, robot, reference, cfg) for log in held_logs]) if held_logs else None
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = ResidualNet(cfg, np.asarray(robot.torque_limit))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    x, y = torch.as_tensor(train.x), torch.as_tensor(train.y, dtype=torch.float32)
    scale = net.bound  # loss in units of each joint's bound
    started = time.monotonic()
    for step in range(steps):
        idx = torch.as_tensor(rng.integers(0, len(x), batch))
        loss = torch.mean(((net(x[idx]) - y[idx]) / scale) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and (step % 50 == 0 or step == steps - 1):
            progress(step + 1, float(loss))
    train_r2, train_rms = r_squared(net, train)
    scores = {"train_r2": train_r2, "train_rms_nm": train_rms, "seconds": time.monotonic() - started}
    if held is not None:
        scores["held_out_r2"], scores["held_out_rms_nm"] = r_squared(net, held)
    lineage = {
        "logs": [{"path": str(log.path), "sha256": log.sha256} for log in logs],
        "held_out_logs": [{"path": str(log.path), "sha256": log.sha256} for log in held_logs],
        "reference": reference_source or {"profile": "nominal"},
        "reference_profile": {k: v for k, v in reference.flat().items() if np.isfinite(v)},
        "reference_toml_sha256": hashlib.sha256(reference.to_toml().encode()).hexdigest(),
    }
    checkpoint = ckpt.save_checkpoint(
        Path(out),
        step=len(train.x),
        iteration=steps,
        weights={k: v.detach().clone() for k, v in net.state_dict().items()},
        state={"step": torch.tensor(steps)},
        config={"kind": KIND, "robot": robot.name, "residual": cfg.as_dict(), "lr": lr, "batch": batch, "seed": seed},
        reward_weights={},
        data_manifest=lineage,
        eval_scores=scores,
    )
    return checkpoint, scores
