"""PNG plots of one simulation of a recording: velocity tracking, reward terms, torques, foot contacts, events."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from ogi.envs.observations import quat_rotate_inverse
from ogi.replay.reader import Recording

EVENT_COLORS = {"reset": "0.5", "push": "tab:orange", "safety": "tab:red"}
OTHER_EVENT_COLOR = "tab:purple"


def _base_addresses(model: mujoco.MjModel, base_body: str) -> tuple[int, int]:
    body = model.body(base_body).id
    for j in range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body]):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
    raise ValueError(f"base body '{base_body}' has no free joint")


def _mark_events(axes, events: list[dict], sim: int) -> None:
    """Vertical lines at the events of simulation `sim` (and those for every simulation)."""
    for event in events:
        if event["sim"] not in (sim, -1):
            continue
        color = EVENT_COLORS.get(event["kind"], OTHER_EVENT_COLOR)
        style = "--" if event["kind"] in ("reset", "push") else "-"
        for ax in np.atleast_1d(axes).ravel():
            ax.axvline(event["time_s"], color=color, linestyle=style, linewidth=0.9, alpha=0.8)


def _legend_for_events(fig, events: list[dict], sim: int) -> None:
    from matplotlib.lines import Line2D

    kinds = sorted({e["kind"] for e in events if e["sim"] in (sim, -1)})
    if kinds:
        handles = [Line2D([], [], color=EVENT_COLORS.get(k, OTHER_EVENT_COLOR), label=f"event: {k}") for k in kinds]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)


def write_plots(recording: Recording, out_dir: Path, sim: int = 0) -> list[Path]:
    """Write velocity.png, rewards.png, torques.png, contacts.png for simulation `sim`; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recording.check_sim(sim)
    info = recording.info
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = recording.arrays(("qpos", "qvel", "command", "reward", "reward_terms", "torque", "foot_contact"))
    if len(arrays["qpos"]) == 0:
        raise ValueError(f"{recording.path} has no steps to plot")
    dt = float(info["ctrl_dt_s"])
    t = (np.arange(len(arrays["qpos"])) + 1) * dt
    model = recording.sim_model(sim)
    qadr, vadr = _base_addresses(model, info["base_body"])
    quat = arrays["qpos"][:, sim, qadr + 3 : qadr + 7]
    v_body = quat_rotate_inverse(quat, arrays["qvel"][:, sim, vadr : vadr + 3])
    yaw_rate = arrays["qvel"][:, sim, vadr + 5]  # a free joint's angular velocity is in the body frame
    command = arrays["command"][:, sim]
    events = recording.events
    title = f"{recording.path.name}: {info['robot']}, simulation {sim}"
    paths = []

    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    for ax, actual, commanded, label in zip(
        axes, (v_body[:, 0], v_body[:, 1], yaw_rate), command.T, ("vx m/s", "vy m/s", "yaw rate rad/s")
    ):
        ax.plot(t, commanded, color="black", linestyle="--", label="commanded")
        ax.plot(t, actual, color="tab:blue", label="actual")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time s")
    _mark_events(axes, events, sim)
    fig.suptitle(f"{title}: commanded vs actual base velocity (body frame)")
    _legend_for_events(fig, events, sim)
    paths.append(_save(fig, out_dir / "velocity.png"))

    fig, ax = plt.subplots(figsize=(10, 5))
    terms = arrays["reward_terms"][:, sim]
    for i, name in enumerate(recording.reward_terms):
        ax.plot(t, terms[:, i], linewidth=1.0, label=name.removeprefix("reward/"))
    ax.plot(t, arrays["reward"][:, sim], color="black", linewidth=1.5, label="total")
    ax.set_xlabel("time s")
    ax.set_ylabel("reward per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    _mark_events(ax, events, sim)
    fig.suptitle(f"{title}: reward terms")
    _legend_for_events(fig, events, sim)
    paths.append(_save(fig, out_dir / "rewards.png"))

    joints = info["joint_names"]
    limit = _torque_limits(recording, sim, len(joints))
    cols = 4 if len(joints) % 4 == 0 else 3
    rows = int(np.ceil(len(joints) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.0 * rows + 1), sharex=True, squeeze=False)
    for j, name in enumerate(joints):
        ax = axes.ravel()[j]
        ax.plot(t, arrays["torque"][:, sim, j], linewidth=0.9)
        ax.axhline(limit[j], color="tab:red", linestyle=":")
        ax.axhline(-limit[j], color="tab:red", linestyle=":")
        ax.set_title(name.removesuffix("_joint"), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(joints) :]:
        ax.set_visible(False)
    _mark_events(axes.ravel()[: len(joints)], events, sim)
    fig.suptitle(f"{title}: joint torques N*m against their limits (dotted)")
    _legend_for_events(fig, events, sim)
    paths.append(_save(fig, out_dir / "torques.png"))

    feet = info["foot_sites"]
    contact = arrays["foot_contact"][:, sim].astype(bool)
    fig, ax = plt.subplots(figsize=(10, 1 + 0.5 * len(feet)))
    for f in range(len(feet)):
        runs = _runs(contact[:, f])
        ax.broken_barh([(t[a] - dt, (b - a) * dt) for a, b in runs], (f - 0.4, 0.8), color="tab:green")
    ax.set_yticks(range(len(feet)), feet)
    ax.set_xlabel("time s")
    ax.set_xlim(0, t[-1])
    _mark_events(ax, events, sim)
    fig.suptitle(f"{title}: foot contacts (bars: in contact)")
    _legend_for_events(fig, events, sim)
    paths.append(_save(fig, out_dir / "contacts.png"))
    plt.close("all")
    return paths


def _torque_limits(recording: Recording, sim: int, num_joints: int) -> np.ndarray:
    """(j,) N*m: the simulation's actuator force range if randomization changed it, else the robot's limits."""
    nominal = np.asarray(recording.info["torque_limit_nm"], dtype=float)
    rows = recording.initial_model_rows.get("jnt_actfrcrange")
    if rows is None:
        return nominal
    model = recording.base_model()
    ids = [model.joint(name).id for name in recording.info["joint_names"]]
    return np.abs(rows[sim][ids, 1])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a 1-d mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _save(fig, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=100)
    return path
