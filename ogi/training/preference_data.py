"""Gait clips and their scripted labellers: the data a gait-style reward model learns from.

Each policy step gives per-env gait features the policy never observes (read from the env after the step): swing
foot clearance, stance foot slip, action jerk, base roll/pitch rate, base height, mechanical power, torque, speed
and velocity-tracking error. A clip is a fixed-length window of one env's rollout inside one episode (after the
episode's first `settle_steps`): its per-step policy observations and actions (what the reward model reads) and
its aggregated gait features (what a labeller reads). Clips of similar commands are paired, and a labeller says
which clip of each pair walks better.

Two labellers stand in for human raters. The training labeller scores a weighted sum of clip means; the held-out
labeller reads other aggregates (90th percentiles, peaks, energy per metre, a clearance shortfall) through a
concave penalty, and is used only to judge, so that a policy which games the training labeller's rule (or the
reward model's reading of it) does not look better than it walks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogi.envs.observations import quat_rotate_inverse

FEATURE_NAMES = (
    "swing_clearance_m",  # mean height of the feet in the air above the ground under them (NaN: none in the air)
    "stance_slip_mps",  # mean horizontal speed of the feet in contact (NaN: none in contact)
    "action_jerk",  # mean over joints of (a_t - 2 a_{t-1} + a_{t-2})^2
    "roll_pitch_rate_radps",  # |(w_x, w_y)| of the base, body frame
    "base_height_m",  # base height above the ground under it
    "power_w",  # sum over joints of |tau * qd|
    "torque_nm",  # root mean square joint torque
    "speed_mps",  # horizontal base speed
    "tracking_error_mps",  # |cmd_xy - v_xy|, body frame
)
AGGREGATE_NAMES = (
    "clearance_mean_m",
    "clearance_p10_m",
    "slip_mean_mps",
    "slip_p90_mps",
    "jerk_mean",
    "jerk_p90",
    "roll_pitch_rate_mean_radps",
    "roll_pitch_rate_peak_radps",
    "base_height_std_m",
    "power_mean_w",
    "torque_rms_nm",
    "speed_mean_mps",
    "tracking_error_mean_mps",
    "energy_per_metre_j",
)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_A = {name: i for i, name in enumerate(AGGREGATE_NAMES)}


@dataclass(frozen=True)
class PreStep:
    """What a step's features need from before the step: the action before the last (n, j), the feet's world
    positions (n, f, 3) m and the command (n, 3) the policy acts on."""

    action_before_last: np.ndarray
    foot_pos: np.ndarray
    command: np.ndarray

    @classmethod
    def of(cls, env) -> PreStep:
        """Read from a `WalkVecEnv` just before `step` (`env.last_action` is then a_{t-2})."""
        return cls(env.last_action.copy(), env.last_foot_pos.copy(), env.command.copy())


def gait_features(env, action: np.ndarray, before: PreStep) -> np.ndarray:
    """Per-env gait features (n, len(FEATURE_NAMES)) of the step just taken with `action` (n, j).

    env: a `WalkVecEnv` right after `step` (an env that ended this step already holds its next episode's start).
    """
    rig, dt = env.rig, env.cfg.sim.ctrl_dt_s
    # the action as the env applied it: clipped, held joints at zero
    action = np.clip(np.asarray(action, dtype=np.float64), -env.cfg.action_clip, env.cfg.action_clip)
    action[:, env.held] = 0.0
    foot_pos = env.last_foot_pos  # the feet after this step
    contact = env.last_foot_contact
    foot_height = foot_pos[:, :, 2] - env.ground_height(foot_pos[:, :, :2])
    swing = ~contact
    with np.errstate(invalid="ignore", divide="ignore"):
        clearance = np.where(swing, foot_height, 0.0).sum(axis=1) / swing.sum(axis=1)
        slip_speed = np.linalg.norm(foot_pos[:, :, :2] - before.foot_pos[:, :, :2], axis=-1) / dt
        slip = np.where(contact, slip_speed, 0.0).sum(axis=1) / contact.sum(axis=1)
    # second difference of the actions: a_t - 2 a_{t-1} + a_{t-2}
    jerk = np.mean((action - 2.0 * env.last_action + before.action_before_last) ** 2, axis=1)
    base = rig.base_pose()
    ang_vel = rig.base_ang_vel_body()
    lin_vel = quat_rotate_inverse(base[:, 3:7], rig.base_lin_vel_world())
    torque, joint_vel = rig.joint_torque(), rig.joint_vel()
    return np.column_stack(
        [
            clearance,
            slip,
            jerk,
            np.linalg.norm(ang_vel[:, :2], axis=1),
            base[:, 2] - env.ground_height(base[:, :2]),
            np.abs(torque * joint_vel).sum(axis=1),
            np.sqrt(np.mean(torque**2, axis=1)),
            np.linalg.norm(lin_vel[:, :2], axis=1),
            np.linalg.norm(before.command[:, :2] - lin_vel[:, :2], axis=1),
        ]
    ).astype(np.float32)


def clip_aggregates(features: np.ndarray) -> np.ndarray:
    """Per-clip gait figures (N, len(AGGREGATE_NAMES)) from per-step features (N, L, len(FEATURE_NAMES))."""
    f = np.asarray(features, dtype=np.float64)

    def nan_stat(values: np.ndarray, stat) -> np.ndarray:
        # a clip whose feet never left (or never touched) the ground has no clearance (slip): 0
        filled = np.where(np.isnan(values).all(axis=1, keepdims=True), 0.0, values)
        return stat(filled, axis=1)

    clearance, slip = f[..., _F["swing_clearance_m"]], f[..., _F["stance_slip_mps"]]
    jerk, rate = f[..., _F["action_jerk"]], f[..., _F["roll_pitch_rate_radps"]]
    power = f[..., _F["power_w"]].mean(axis=1)
    speed = f[..., _F["speed_mps"]].mean(axis=1)
    return np.column_stack(
        [
            nan_stat(clearance, np.nanmean),
            nan_stat(clearance, lambda v, axis: np.nanpercentile(v, 10, axis=axis)),
            nan_stat(slip, np.nanmean),
            nan_stat(slip, lambda v, axis: np.nanpercentile(v, 90, axis=axis)),
            jerk.mean(axis=1),
            np.percentile(jerk, 90, axis=1),
            rate.mean(axis=1),
            rate.max(axis=1),
            f[..., _F["base_height_m"]].std(axis=1),
            power,
            np.sqrt(np.mean(f[..., _F["torque_nm"]] ** 2, axis=1)),
            speed,
            f[..., _F["tracking_error_mps"]].mean(axis=1),
            # J/m; a robot holding still is charged as if it crawled at 0.2 m/s
            power / np.maximum(speed, 0.2),
        ]
    ).astype(np.float32)


@dataclass(frozen=True)
class Clips:
    """N clips of L policy steps: obs (N, L, d) policy observations, actions (N, L, j), features
    (N, L, len(FEATURE_NAMES)), commands (N, 3) (the command at the clip's first step), aggregates
    (N, len(AGGREGATE_NAMES)), env (N,) the simulation each came from and start (N,) the recorder's step count at
    its first step (equal (env, start) in two rollouts of one seed: the same window)."""

    obs: np.ndarray
    actions: np.ndarray
    features: np.ndarray
    commands: np.ndarray
    aggregates: np.ndarray
    env: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)

    @classmethod
    def empty(cls, steps: int, obs_dim: int, action_dim: int) -> Clips:
        return cls(
            obs=np.zeros((0, steps, obs_dim), np.float32),
            actions=np.zeros((0, steps, action_dim), np.float32),
            features=np.zeros((0, steps, len(FEATURE_NAMES)), np.float32),
            commands=np.zeros((0, 3), np.float32),
            aggregates=np.zeros((0, len(AGGREGATE_NAMES)), np.float32),
            env=np.zeros(0, np.int64),
            start=np.zeros(0, np.int64),
        )

    def take(self, index: np.ndarray) -> Clips:
        return Clips(
            self.obs[index],
            self.actions[index],
            self.features[index],
            self.commands[index],
            self.aggregates[index],
            self.env[index],
            self.start[index],
        )

    @staticmethod
    def concatenate(parts: list[Clips]) -> Clips:
        return Clips(*(np.concatenate([getattr(p, name) for p in parts]) for name in _CLIP_FIELDS))


_CLIP_FIELDS = ("obs", "actions", "features", "commands", "aggregates", "env", "start")


class ClipRecorder:
    """Cuts each env's rollout into back-to-back clips of `steps` policy steps, none crossing an episode end and
    none within the first `settle_steps` of an episode (the spawn's drop and the first steps' zero history)."""

    def __init__(self, num_envs: int, steps: int, settle_steps: int, obs_dim: int, action_dim: int):
        self.steps, self.settle_steps = steps, settle_steps
        self.obs = np.zeros((num_envs, steps, obs_dim), np.float32)
        self.actions = np.zeros((num_envs, steps, action_dim), np.float32)
        self.features = np.zeros((num_envs, steps, len(FEATURE_NAMES)), np.float32)
        self.commands = np.zeros((num_envs, 3), np.float32)
        self.fill = np.zeros(num_envs, np.int64)
        self.episode_step = np.zeros(num_envs, np.int64)
        self.start = np.zeros(num_envs, np.int64)
        self.step = 0
        self.done: list[Clips] = []

    def record(
        self, obs: np.ndarray, action: np.ndarray, features: np.ndarray, command: np.ndarray, ended: np.ndarray
    ) -> None:
        """One step of every env: the observation acted on (n, d), the action (n, j), the step's features (n, F),
        the command acted on (n, 3) and whether the episode ended with this step (n,) (its features then belong
        to the next episode's start, so the step is dropped)."""
        keep = ~ended & (self.episode_step >= self.settle_steps)
        rows = np.flatnonzero(keep)
        slot = self.fill[rows]
        starting = rows[slot == 0]
        self.commands[starting] = command[starting]
        self.start[starting] = self.step
        self.obs[rows, slot] = obs[rows]
        self.actions[rows, slot] = action[rows]
        self.features[rows, slot] = features[rows]
        self.fill[rows] += 1
        full = np.flatnonzero(self.fill == self.steps)
        if len(full):
            features_full = self.features[full].copy()
            self.done.append(
                Clips(
                    self.obs[full].copy(),
                    self.actions[full].copy(),
                    features_full,
                    self.commands[full].copy(),
                    clip_aggregates(features_full),
                    full.copy(),
                    self.start[full].copy(),
                )
            )
            self.fill[full] = 0
        self.fill[ended] = 0
        self.episode_step = np.where(ended, 0, self.episode_step + 1)
        self.step += 1

    def take(self) -> Clips:
        """The clips completed since the last call."""
        if not self.done:
            return Clips.empty(self.steps, self.obs.shape[-1], self.actions.shape[-1])
        clips, self.done = Clips.concatenate(self.done), []
        return clips


def pair_by_command(commands: np.ndarray, rng: np.random.Generator, max_gap: float = 0.3) -> np.ndarray:
    """Disjoint pairs (P, 2) of clips whose commands (N, 3) differ by at most `max_gap` (Euclidean, m/s and
    rad/s): each clip in random order takes the nearest unpaired clip. A labeller then compares how two clips
    walk, not how fast they were asked to go."""
    n = len(commands)
    free = np.ones(n, dtype=bool)
    pairs = []
    for i in rng.permutation(n):
        if not free[i]:
            continue
        free[i] = False
        # one row of gaps at a time: the full (N, N) matrix of a few thousand clips is hundreds of MB
        candidates = np.where(free, np.linalg.norm(commands - commands[i], axis=-1), np.inf)
        j = int(np.argmin(candidates))
        if candidates[j] <= max_gap:
            free[j] = False
            pairs.append((i, j))
        else:
            free[i] = True
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


# typical magnitudes of each aggregate for a trained go2 walker: the labellers' units
_SCALES = {
    "clearance_mean_m": 0.03,
    "clearance_p10_m": 0.02,
    "slip_mean_mps": 0.1,
    "slip_p90_mps": 0.2,
    "jerk_mean": 0.1,
    "jerk_p90": 0.2,
    "roll_pitch_rate_mean_radps": 0.3,
    "roll_pitch_rate_peak_radps": 0.8,
    "base_height_std_m": 0.01,
    "power_mean_w": 100.0,
    "torque_rms_nm": 5.0,
    "speed_mean_mps": 0.5,
    "tracking_error_mean_mps": 0.2,
    "energy_per_metre_j": 200.0,
}


@dataclass(frozen=True, kw_only=True)
class LinearStyleLabeller:
    """The training labeller: score = sum_k w_k x_k / s_k over clip aggregates x (weights signed: clearance up to
    `clearance_cap_m` is good, the rest is cost); prefers A over B with Pr = sigmoid((score_A - score_B) / T)
    (T = `temperature`; 0: always the higher score)."""

    weights: tuple[tuple[str, float], ...] = (
        ("clearance_mean_m", 1.0),
        ("slip_mean_mps", -1.0),
        # exploration noise dominates jerk; at full weight it would drown every other difference between clips
        ("jerk_mean", -0.2),
        ("roll_pitch_rate_mean_radps", -1.0),
        ("base_height_std_m", -0.5),
        ("power_mean_w", -1.0),
        ("tracking_error_mean_mps", -1.0),
    )
    clearance_cap_m: float = 0.12
    temperature: float = 0.0

    def score(self, aggregates: np.ndarray) -> np.ndarray:
        """(N,) style score of clips with aggregates (N, len(AGGREGATE_NAMES)); higher is better."""
        x = np.asarray(aggregates, dtype=np.float64).copy()
        x[:, _A["clearance_mean_m"]] = np.minimum(x[:, _A["clearance_mean_m"]], self.clearance_cap_m)
        return sum(w * x[:, _A[name]] / _SCALES[name] for name, w in self.weights)

    def prefer(self, aggregates_a: np.ndarray, aggregates_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(P,) bool: whether clip A walks better than clip B."""
        return _choose(self.score(aggregates_a) - self.score(aggregates_b), self.temperature, rng)


@dataclass(frozen=True, kw_only=True)
class HeldOutStyleLabeller:
    """The judging labeller, another rule for good walking: penalty = sum_k w_k log(1 + max(x_k, 0) / s_k) over
    other aggregates (the worst tenth of slip and jerk, the peak body rate, energy per metre, the shortfall of the
    lowest tenth of swing clearance below `clearance_target_m`, squared tracking error); score = -penalty."""

    weights: tuple[tuple[str, float], ...] = (
        ("clearance_shortfall", 1.5),
        ("slip_p90_mps", 1.0),
        ("jerk_p90", 1.0),
        ("roll_pitch_rate_peak_radps", 1.0),
        ("energy_per_metre_j", 1.0),
        ("tracking_error_squared", 1.0),
    )
    clearance_target_m: float = 0.06
    temperature: float = 0.0

    def score(self, aggregates: np.ndarray) -> np.ndarray:
        x = np.asarray(aggregates, dtype=np.float64)
        terms = {name: x[:, _A[name]] / _SCALES[name] for name in AGGREGATE_NAMES}
        terms["clearance_shortfall"] = (self.clearance_target_m - x[:, _A["clearance_p10_m"]]) / 0.02
        terms["tracking_error_squared"] = (x[:, _A["tracking_error_mean_mps"]] / 0.2) ** 2
        return -sum(w * np.log1p(np.maximum(terms[name], 0.0)) for name, w in self.weights)

    def prefer(self, aggregates_a: np.ndarray, aggregates_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _choose(self.score(aggregates_a) - self.score(aggregates_b), self.temperature, rng)


def _choose(margin: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    if temperature <= 0:
        return margin > 0
    # Bradley-Terry rater: Pr(A) = sigmoid(margin / T)
    return rng.random(len(margin)) < 1.0 / (1.0 + np.exp(-margin / temperature))


def label_pairs(
    labeller: LinearStyleLabeller | HeldOutStyleLabeller, clips: Clips, pairs: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(P, 2) clip indices ordered (preferred, other) by the labeller."""
    a_wins = labeller.prefer(clips.aggregates[pairs[:, 0]], clips.aggregates[pairs[:, 1]], rng)
    return np.where(a_wins[:, None], pairs, pairs[:, ::-1])
