"""`ogi export`: a trained policy as an ONNX graph plus a manifest that says everything a robot program needs.

The graph is `obs, state_0..state_k -> action, state_out_0..state_out_k`: the observation normalizer is part
of the graph, and a recurrent actor's state is explicit inputs and outputs (zeros start an episode), so any
ONNX runtime can run it without our classes. The manifest (see `docs/deploy.md`) records the observation
layout with scales and units, the action scaling and default pose, joint order and its SDK motor mapping,
gains and limits, rates, and hashes: the ONNX file's sha256 and the source checkpoint's hash and lineage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ogi import checkpoints as ckpt
from ogi.deploy.artifact import (
    FALL_PREDICTOR_FILENAME,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILENAME,
    ONNX_FILENAME,
    RESIDUAL_FILENAME,
    Artifact,
    ArtifactError,
    load_artifact,
    manifest_sha256,
)
from ogi.envs import observations as obs_def
from ogi.envs.config import held_joint_mask
from ogi.robots import RobotSpec, get_robot

OPSET = 17
POLICY_RATE_HZ = 50.0
PD_RATE_HZ = 1000.0
# SDK motor order per robot: the leg order of the public Unitree SDK2 (motor i of LowCmd_/LowState_)
_SDK_LEGS = {"go2": ("FR", "FL", "RR", "RL")}
_SDK_PARTS = {"go2": ("hip", "thigh", "calf")}


class PolicyGraph(nn.Module):
    """normalizer -> actor as one module with the state flattened into positional tensors (for export)."""

    def __init__(self, actor: nn.Module, normalizer: nn.Module):
        super().__init__()
        self.actor = actor
        self.normalizer = normalizer

    def forward(self, obs: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean, new_state = self.actor(self.normalizer(obs), tuple(state))
        return (mean, *new_state)


def sdk_motor_names(robot_name: str) -> tuple[str, ...] | None:
    """Joint names in SDK motor order for robots with an SDK motor table, else None."""
    if robot_name not in _SDK_LEGS:
        return None
    return tuple(f"{leg}_{part}_joint" for leg in _SDK_LEGS[robot_name] for part in _SDK_PARTS[robot_name])


def sdk_motor_index(robot: RobotSpec) -> list[int] | None:
    """For each joint in model (action) order, its SDK motor index; matched by name, never by position."""
    names = sdk_motor_names(robot.name)
    if names is None:
        return None
    missing = sorted(set(robot.joint_names) - set(names))
    if missing:
        raise ArtifactError(f"robot '{robot.name}': joints {missing} have no SDK motor")
    return [names.index(joint) for joint in robot.joint_names]


def observation_fields(num_joints: int, depth_pixels: int, gait_clock: bool = False) -> list[dict[str, Any]]:
    """The policy observation's fields in order: name, size, scale (per element), unit, frame, what it is."""
    describe = {
        "base_ang_vel": ([obs_def.ANG_VEL_SCALE] * 3, "rad/s", "base (IMU) angular velocity, body frame"),
        "projected_gravity": ([1.0] * 3, "1", "unit gravity direction in the body frame, (0, 0, -1) when level"),
        "command": (obs_def.COMMAND_SCALE.tolist(), "m/s, m/s, rad/s", "commanded vx, vy (body frame), yaw rate"),
        "joint_pos": ([1.0] * num_joints, "rad", "joint angle minus default_pose_rad, model joint order"),
        "joint_vel": ([obs_def.JOINT_VEL_SCALE] * num_joints, "rad/s", "joint velocity, model joint order"),
        "last_action": ([1.0] * num_joints, "1", "the previous policy output after clipping, model joint order"),
        "gait_phase": (
            [1.0, 1.0],
            "1",
            "gait clock: sin and cos of 2 pi k policy_period / control.gait.period_s, k policy steps since the start",
        ),
        "depth_image": ([1.0] * depth_pixels, "1", "downward depth image, row-major, range / max_range in [0, 1]"),
    }
    layout = obs_def.policy_layout(num_joints, depth_pixels=depth_pixels, gait_clock=gait_clock)
    fields, offset = [], 0
    for name, size in zip(layout.names, layout.sizes):
        scale, unit, meaning = describe[name]
        fields.append({"name": name, "offset": offset, "size": size, "scale": scale, "unit": unit, "meaning": meaning})
        offset += size
    return fields


def build_manifest(
    *,
    robot: RobotSpec,
    cfg: Any,
    checkpoint: ckpt.Checkpoint,
    lineage: list[str],
    state_shapes: tuple[tuple[int, ...], ...],
    onnx_sha256: str,
    onnx_bytes: int,
) -> dict[str, Any]:
    """The artifact's manifest (without its own hash) from a loaded run's pieces."""
    env = cfg.env
    depth_pixels = env.depth_camera.pixels if env.depth_camera.enabled else 0
    fields = observation_fields(robot.num_joints, depth_pixels, gait_clock=env.gait.enabled)
    held_mask = held_joint_mask(robot.joint_names, env.held_joints)
    obs_size = sum(f["size"] for f in fields)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "robot": {
            "name": robot.name,
            "joint_names": list(robot.joint_names),
            "sdk_motor_index": sdk_motor_index(robot),
            "default_pose_rad": list(robot.default_pose),
            "kp": list(robot.kp),
            "kd": list(robot.kd),
            "torque_limit_nm": list(robot.torque_limit),
            "joint_limits_rad": [list(lim) for lim in robot.joint_limits],
            "nominal_base_height_m": robot.nominal_base_height,
        },
        "observation": {
            "group": cfg.actor_obs,
            "size": obs_size,
            "fields": fields,
            "depth_camera": dataclasses.asdict(env.depth_camera) if depth_pixels else None,
        },
        "action": {
            "size": robot.num_joints,
            "clip": env.action_clip,
            "scale_rad": robot.action_scale,
            "law": "q_des = default_pose_rad + scale_rad * clip(action, -clip, clip) [+ control.gait swing offsets]",
            # joints held at the default pose: their actions read as zero
            "held_joints": [j for j, h in zip(robot.joint_names, held_mask) if h],
        },
        "control": {
            "policy_rate_hz": POLICY_RATE_HZ,
            "pd_rate_hz": PD_RATE_HZ,
            "pd_law": "tau = clip(kp (q_des - q) - kd dq + tau_ff, -torque_limit, torque_limit)",
            "gravity_feedforward": bool(env.sim.gravity_feedforward),
            "trained_sim_dt_s": env.sim.sim_dt_s,
            "trained_ctrl_dt_s": env.sim.ctrl_dt_s,
            # the gait clock the policy reads and the swing-leg offsets added under its action (ogi.envs.gait)
            "gait": {
                "period_s": env.gait.period_s,
                "stance_fraction": env.gait.stance_fraction,
                "swing_height_m": env.gait.swing_height_m,
                "swing_joint_offsets_rad": dict(env.gait.swing_joint_offsets_rad),
            }
            if env.gait.enabled
            else None,
        },
        "policy": {
            "file": ONNX_FILENAME,
            "sha256": onnx_sha256,
            "bytes": onnx_bytes,
            "opset": OPSET,
            "inputs": [{"name": "obs", "shape": [1, obs_size]}]
            + [{"name": f"state_{i}", "shape": [1, *shape]} for i, shape in enumerate(state_shapes)],
            "outputs": [{"name": "action", "shape": [1, robot.num_joints]}]
            + [{"name": f"state_out_{i}", "shape": [1, *shape]} for i, shape in enumerate(state_shapes)],
            "state_init": "zeros",
            "normalizer": "in the graph",
            "actor": cfg.actor.kind if hasattr(cfg.actor, "kind") else type(cfg.actor).__name__,
        },
        "source": {
            "checkpoint_sha256": checkpoint.checkpoint_sha256,
            "lineage": lineage,
            "weights_sha256": checkpoint.manifest["weights_sha256"],
            "config_sha256": checkpoint.manifest["config_sha256"],
            "step": checkpoint.step,
            "eval_scores": dict(checkpoint.eval_scores),
        },
    }


def export_onnx(actor: nn.Module, normalizer: nn.Module, obs_dim: int, path: Path) -> tuple[tuple[int, ...], ...]:
    """Write the normalizer + actor graph to `path`; returns the state shapes (without the batch dimension)."""
    graph = PolicyGraph(actor, normalizer).eval()
    state = tuple(actor.initial_state(1))
    shapes = tuple(tuple(s.shape[1:]) for s in state)
    inputs = ["obs"] + [f"state_{i}" for i in range(len(state))]
    outputs = ["action"] + [f"state_out_{i}" for i in range(len(state))]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # the fused attention kernel has no ONNX form; the unfused layers compute the same function
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter: the torch.export one needs onnxscript, which this stack does not ship
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                graph,
                (torch.zeros(1, obs_dim), *state),
                str(path),
                input_names=inputs,
                output_names=outputs,
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return shapes


class FallPredictorGraph(nn.Module):
    """A fall predictor as one module: (window (1, w, d) raw observations, valid (1, w) 1/0) -> probability (1,)."""

    def __init__(self, predictor: nn.Module):
        super().__init__()
        self.predictor = predictor

    def forward(self, window: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.predictor(window, valid))


def export_fall_predictor_onnx(predictor: nn.Module, path: Path) -> None:
    cfg = predictor.cfg
    graph = FallPredictorGraph(predictor).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            (torch.zeros(1, cfg.window, cfg.obs_dim), torch.zeros(1, cfg.window)),
            str(path),
            input_names=["window", "valid"],
            output_names=["fall_probability"],
            opset_version=OPSET,
            dynamo=False,
        )


def fall_predictor_manifest(
    predictor_path: Path,
    loaded: ckpt.LoadedCheckpoint,
    cfg: Any,
    checkpoint: ckpt.Checkpoint,
    obs_size: int,
    data: bytes,
) -> dict:
    """The manifest's `fall_predictor` section (its checkpoint `loaded`, its config `cfg`, its ONNX bytes `data`),
    after checking the predictor belongs to this policy."""
    trained_beside = loaded.checkpoint.manifest.get("data_manifest", {}).get("policy_checkpoint_sha256")
    if trained_beside != checkpoint.checkpoint_sha256:
        raise ArtifactError(
            f"{predictor_path}: the fall predictor was trained beside policy checkpoint {str(trained_beside)[:12]}, "
            f"not the exported {checkpoint.checkpoint_sha256[:12]}; train one on this policy's rollouts "
            "(`ogi train-fall-predictor RUN`)"
        )
    if cfg.obs_dim != obs_size:
        raise ArtifactError(
            f"{predictor_path}: the fall predictor reads {cfg.obs_dim} observation values, the policy {obs_size}"
        )
    if abs(cfg.ctrl_dt_s - 1.0 / POLICY_RATE_HZ) > 1e-9:
        raise ArtifactError(
            f"{predictor_path}: the fall predictor's window is sampled every {cfg.ctrl_dt_s} s, the policy runs "
            f"every {1.0 / POLICY_RATE_HZ} s"
        )
    return {
        "file": FALL_PREDICTOR_FILENAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "opset": OPSET,
        "window": cfg.window,
        "obs_dim": cfg.obs_dim,
        "horizon_s": cfg.horizon_s,
        "inputs": [
            {"name": "window", "shape": [1, cfg.window, cfg.obs_dim]},
            {"name": "valid", "shape": [1, cfg.window]},
        ],
        "outputs": [{"name": "fall_probability", "shape": [1]}],
        "reads": "the last `window` policy observations (oldest first, the policy's own input before its "
        "normalizer), valid 1 for a real step and 0 for padding before the episode's first",
        "checkpoint_sha256": loaded.checkpoint.checkpoint_sha256,
        "eval_scores": dict(loaded.checkpoint.eval_scores),
    }


def export_residual(residual: Path, robot: RobotSpec, path: Path) -> dict:
    """Export an actuator residual checkpoint (`ogi train-residual`) to ONNX; its manifest section."""
    from ogi.controllers.residual import residual_from_checkpoint

    net, loaded = residual_from_checkpoint(Path(residual))
    config = loaded.checkpoint.config
    if config["robot"] != robot.name:
        raise ArtifactError(f"{residual}: a residual for robot '{config['robot']}', not '{robot.name}'")
    cfg = net.cfg
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(cfg.num_joints, cfg.feature_dim),),
            str(path),
            input_names=["features"],
            output_names=["residual_nm"],
            opset_version=OPSET,
            dynamo=False,
        )
    data = path.read_bytes()
    return {
        "file": RESIDUAL_FILENAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "opset": OPSET,
        "config": cfg.as_dict(),
        "bound_nm": net.bound.tolist(),
        "inputs": [{"name": "features", "shape": [cfg.num_joints, cfg.feature_dim]}],
        "outputs": [{"name": "residual_nm", "shape": [cfg.num_joints]}],
        "reads": "per joint: [law torque / torque limit, joint velocity at the last `history` ticks (newest first) "
        "x 0.1, one-hot of the joint]; adds the output to the law's torque at 1 kHz while the policy drives",
        "reference": dict(loaded.data_manifest.get("reference", {})),
        "checkpoint_sha256": loaded.checkpoint.checkpoint_sha256,
        "eval_scores": dict(loaded.checkpoint.eval_scores),
    }


def export_policy(
    run: Path, out: Path, *, fall_predictor: Path | None = None, residual: Path | None = None
) -> Artifact:
    """Export a run directory (newest valid checkpoint) or a checkpoint directory to `out/`; returns it loaded.

    fall_predictor: a predictor checkpoint (`ogi train-fall-predictor`) trained beside this policy; it is
    exported as its own ONNX graph, which the runtime runs every policy step to trip the fallback.
    residual: an actuator residual checkpoint (`ogi train-residual`) for this robot, exported as its own
    graph, which the runtime runs every 1 kHz tick while the policy drives.
    Refuses policies that read privileged observations (a teacher cannot run on a robot). Files are written
    to a temporary directory first and moved into place, manifest last.
    """
    from ogi.training.policy_loading import load_policy  # here: the robot side imports this module for its tables

    actor, normalizer, cfg, checkpoint = load_policy(Path(run))
    if cfg.actor_obs != "policy":
        raise ArtifactError(
            f"{run}: the actor reads '{cfg.actor_obs}' observations (a teacher); only a policy that reads the "
            "'policy' group (what a robot measures) can be deployed"
        )
    robot = get_robot(cfg.env.robot)
    chain = ckpt.verify_checkpoint(checkpoint.path, verify_parent_files=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        onnx_tmp = Path(tmp) / ONNX_FILENAME
        shapes = export_onnx(actor, normalizer, actor.obs_dim, onnx_tmp)
        data = onnx_tmp.read_bytes()
        manifest = build_manifest(
            robot=robot,
            cfg=cfg,
            checkpoint=checkpoint,
            lineage=[c.checkpoint_sha256 for c in chain],
            state_shapes=shapes,
            onnx_sha256=hashlib.sha256(data).hexdigest(),
            onnx_bytes=len(data),
        )
        if manifest["observation"]["size"] != actor.obs_dim:
            raise ArtifactError(
                f"observation layout has {manifest['observation']['size']} values but the actor reads {actor.obs_dim}"
            )
        predictor_tmp = Path(tmp) / FALL_PREDICTOR_FILENAME
        if fall_predictor is not None:
            from ogi.policies.fall_predictor import predictor_from_checkpoint

            loaded = ckpt.load_checkpoint(ckpt.resolve_checkpoint(Path(fall_predictor)))
            predictor = predictor_from_checkpoint(loaded)
            export_fall_predictor_onnx(predictor, predictor_tmp)
            manifest["fall_predictor"] = fall_predictor_manifest(
                Path(fall_predictor),
                loaded,
                predictor.cfg,
                checkpoint,
                manifest["observation"]["size"],
                predictor_tmp.read_bytes(),
            )
        residual_tmp = Path(tmp) / RESIDUAL_FILENAME
        if residual is not None:
            manifest["residual"] = export_residual(Path(residual), robot, residual_tmp)
        manifest["manifest_sha256"] = manifest_sha256(manifest)
        (Path(tmp) / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
        onnx_tmp.replace(out / ONNX_FILENAME)
        if fall_predictor is not None:
            predictor_tmp.replace(out / FALL_PREDICTOR_FILENAME)
        else:
            (out / FALL_PREDICTOR_FILENAME).unlink(missing_ok=True)  # a stale one from an earlier export
        if residual is not None:
            residual_tmp.replace(out / RESIDUAL_FILENAME)
        else:
            (out / RESIDUAL_FILENAME).unlink(missing_ok=True)
        (Path(tmp) / MANIFEST_FILENAME).replace(out / MANIFEST_FILENAME)
    return load_artifact(out)


def torch_reference(run: Path):
    """(step function obs (obs_dim,) -> action, reset function) of the torch policy, for fidelity checks."""
    from ogi.training.policy_loading import load_policy

    actor, normalizer, _, _ = load_policy(Path(run))
    state = [actor.initial_state(1)]

    @torch.no_grad()
    def step(obs: np.ndarray) -> np.ndarray:
        mean, state[0] = actor(normalizer(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1)), state[0])
        return mean.numpy()[0]

    def reset() -> None:
        state[0] = actor.initial_state(1)

    return step, reset
