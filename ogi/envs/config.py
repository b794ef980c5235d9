"""Typed, frozen configuration of the `walk` task, nested by concern, loadable from TOML."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogi.envs.curriculum import CurriculumConfig
from ogi.envs.sensing import DepthCameraConfig, HeightScanConfig
from ogi.validation import ConfigError, check_choice, check_int, check_interval, check_range, config_from_toml

if TYPE_CHECKING:
    from ogi.robots.dynamics import DynamicsProfile

TERRAIN_KINDS = (
    "flat",
    "rough",
    "slope_up",
    "slope_down",
    "stairs_up",
    "stairs_down",
    "obstacles",
    "stepping_stones",
    "gaps",
    "waves",
)


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    sim_dt_s: float = 0.001  # physics and low-level PD: 1 kHz
    ctrl_dt_s: float = 0.02  # mid-level policy: 50 Hz
    nthread: int = 0  # simulation threads, 0: all cores
    elliptic_cone: bool = False  # pyramidal is ~18% faster; elliptic is closer to real friction
    gravity_feedforward: bool = True
    # constraint solver effort; MuJoCo's defaults (100, 50) here. Training may cut them (MuJoCo Menagerie's
    # go2_mjx.xml: 1 and 5): Newton with a warm start converges on a walking robot's few contacts in one step
    solver_iterations: int = 100
    ls_iterations: int = 50
    # how long after a policy step starts its PD targets (and gravity feed-forward) act; until then the previous
    # step's do. Rounded to whole physics steps (`delay_substeps`); a robot's command latency, e.g. from a
    # `DynamicsProfile`'s motors.delay_ms
    command_delay_s: float = 0.0

    def __post_init__(self) -> None:
        check_range("sim.sim_dt_s", self.sim_dt_s, 1e-5, 0.01)
        check_range("sim.ctrl_dt_s", self.ctrl_dt_s, self.sim_dt_s, 1.0)
        ratio = self.ctrl_dt_s / self.sim_dt_s
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(
                f"sim.ctrl_dt_s / sim.sim_dt_s = {ratio:.6g} must be a whole number of physics steps per policy step"
            )
        check_range("sim.nthread", self.nthread, 0, 1024)
        check_range("sim.solver_iterations", self.solver_iterations, 1, 1000)
        check_range("sim.ls_iterations", self.ls_iterations, 1, 1000)
        check_range("sim.command_delay_s", self.command_delay_s, 0.0, 1.0)
        if self.command_delay_s >= self.ctrl_dt_s:
            raise ConfigError(
                f"sim.command_delay_s = {self.command_delay_s!r} must be below the control period "
                f"sim.ctrl_dt_s = {self.ctrl_dt_s!r} s: a command must act within the step that sent it"
            )

    @property
    def substeps(self) -> int:
        return round(self.ctrl_dt_s / self.sim_dt_s)

    @property
    def delay_substeps(self) -> int:
        """Physics steps of each policy step that still run on the previous step's targets."""
        return min(round(self.command_delay_s / self.sim_dt_s), self.substeps)


@dataclass(frozen=True, kw_only=True)
class CommandConfig:
    lin_vel_x_mps: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y_mps: tuple[float, float] = (-0.5, 0.5)
    yaw_rate_radps: tuple[float, float] = (-1.0, 1.0)
    resample_s: float = 10.0
    standing_probability: float = 0.1  # share of commands that are exactly zero

    def __post_init__(self) -> None:
        check_interval("commands.lin_vel_x_mps", self.lin_vel_x_mps, -10, 10)
        check_interval("commands.lin_vel_y_mps", self.lin_vel_y_mps, -10, 10)
        check_interval("commands.yaw_rate_radps", self.yaw_rate_radps, -10, 10)
        check_range("commands.resample_s", self.resample_s, 0.02, 1e6)
        check_range("commands.standing_probability", self.standing_probability, 0, 1)


@dataclass(frozen=True, kw_only=True)
class NoiseConfig:
    """Uniform noise half-widths on the `policy` observations, in the observations' raw units."""

    enabled: bool = True
    ang_vel_radps: float = 0.2
    gravity: float = 0.05
    joint_pos_rad: float = 0.01
    joint_vel_radps: float = 1.5

    def __post_init__(self) -> None:
        for name in ("ang_vel_radps", "gravity", "joint_pos_rad", "joint_vel_radps"):
            check_range(f"noise.{name}", getattr(self, name), 0, 100)


@dataclass(frozen=True, kw_only=True)
class RandomizationConfig:
    """Per-simulation domain randomization, drawn at each reset."""

    enabled: bool = True
    friction: tuple[float, float] = (0.4, 1.25)
    added_base_mass_kg: tuple[float, float] = (-1.0, 2.0)
    com_offset_m: float = 0.03  # half-width per axis
    motor_strength: tuple[float, float] = (0.9, 1.1)
    kp_scale: tuple[float, float] = (0.9, 1.1)
    kd_scale: tuple[float, float] = (0.9, 1.1)
    initial_joint_offset_rad: float = 0.1
    push_interval_s: tuple[float, float] = (5.0, 10.0)
    push_velocity_mps: float = 0.5  # base velocity change one push gives, horizontal

    def __post_init__(self) -> None:
        check_interval("randomization.friction", self.friction, 0.0, 5.0)
        check_interval("randomization.added_base_mass_kg", self.added_base_mass_kg, -100, 100)
        check_range("randomization.com_offset_m", self.com_offset_m, 0, 0.5)
        check_interval("randomization.motor_strength", self.motor_strength, 0.0, 5.0)
        check_interval("randomization.kp_scale", self.kp_scale, 0.0, 5.0)
        check_interval("randomization.kd_scale", self.kd_scale, 0.0, 5.0)
        check_range("randomization.initial_joint_offset_rad", self.initial_joint_offset_rad, 0, 1)
        check_interval("randomization.push_interval_s", self.push_interval_s, 0.02, 1e6)
        check_range("randomization.push_velocity_mps", self.push_velocity_mps, 0, 10)


@dataclass(frozen=True, kw_only=True)
class TerminationConfig:
    max_tilt_rad: float = 1.0  # angle between base z and world z
    min_base_height_fraction: float = 0.5  # of the robot's nominal base height
    max_joint_vel_radps: float = 500.0  # beyond this the state is treated as diverged

    def __post_init__(self) -> None:
        check_range("termination.max_tilt_rad", self.max_tilt_rad, 0.01, math.pi)
        check_range("termination.min_base_height_fraction", self.min_base_height_fraction, 0, 1)
        check_range("termination.max_joint_vel_radps", self.max_joint_vel_radps, 1, 1e6)


@dataclass(frozen=True, kw_only=True)
class TerrainConfig:
    """Terrain tiles of every kind and level in one heightfield, and the success-rate curriculum over them.

    Disabled, the ground is a flat plane. Height scan and depth camera are independent of the terrain.
    """

    enabled: bool = False
    kinds: tuple[str, ...] = TERRAIN_KINDS
    tile_size_m: float = 8.0
    resolution_m: float = 0.1  # as legged_gym's 0.1 m: a foot meets fewer cells, so contacts cost less
    seed: int = 0
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ConfigError("terrain.kinds must name at least one kind")
        for index, kind in enumerate(self.kinds):
            check_choice(f"terrain.kinds[{index}]", kind, TERRAIN_KINDS)
        check_range("terrain.tile_size_m", self.tile_size_m, 2.0, 50.0)
        check_range("terrain.resolution_m", self.resolution_m, 0.01, 0.5)
        ratio = self.tile_size_m / self.resolution_m
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(f"terrain.tile_size_m / terrain.resolution_m = {ratio:.6g} must be a whole number")


DEFAULT_REWARD_WEIGHTS: Mapping[str, float] = types.MappingProxyType(
    {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -0.5,
        "ang_vel_xy": -0.05,
        "orientation": -5.0,
        "base_height": -1.0,
        "torques": -2e-4,
        "joint_acc": -2.5e-7,
        "action_rate": -0.01,
        "energy": -1e-3,
        "feet_air_time": 0.1,
        "feet_clearance": -2.0,
        "feet_height": -0.2,
        "foot_slip": -0.1,
        "trot": 0.0,
        "gait_contact": 0.0,
        "gait_swing": 0.0,
        "undesired_contacts": -1.0,
        "joint_limits": -10.0,
        "pose": 0.5,
        "stand_still": -1.0,
        "termination": -1.0,
    }
)


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    """Weights carry the sign; each term is multiplied by its weight and by ctrl_dt_s."""

    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REWARD_WEIGHTS)
    tracking_sigma: float = 0.25  # (m/s)^2 and (rad/s)^2
    feet_air_time_target_s: float = 0.1
    feet_air_time_max_s: float = 0.0  # air time counted at most this long, s; 0: no cap
    foot_clearance_target_m: float = 0.08  # swing height the feet terms ask for; scale it for other robots
    soft_joint_limit_fraction: float = 0.9
    only_positive: bool = True  # clip the per-step sum of terms (termination aside) at zero

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", types.MappingProxyType(dict(self.weights)))
        for name, weight in self.weights.items():
            check_range(f"rewards.weights.{name}", weight, -1e6, 1e6)
        check_range("rewards.tracking_sigma", self.tracking_sigma, 1e-6, 100)
        check_range("rewards.feet_air_time_target_s", self.feet_air_time_target_s, 0, 10)
        check_range("rewards.feet_air_time_max_s", self.feet_air_time_max_s, 0, 10)
        check_range("rewards.foot_clearance_target_m", self.foot_clearance_target_m, 1e-3, 1.0)
        check_range("rewards.soft_joint_limit_fraction", self.soft_joint_limit_fraction, 0.1, 1)


@dataclass(frozen=True, kw_only=True)
class GaitConfig:
    """A gait clock for walkers that must be taught to step (bipeds): the policy reads the clock's phase as
    (sin, cos); the `gait_contact` term rewards each foot for being down in its stance part of the cycle and up in
    its swing part, and `gait_swing` for following the clock's foot height (zero in stance, a half-sine arch of
    `swing_height_m` over the swing): a dense signal that says when to lift which foot. While the command is
    (near) zero every foot is asked to stay down.

    Foot k's phase is the clock's plus k / (number of feet): a biped's feet are half a cycle apart.
    """

    enabled: bool = False
    period_s: float = 0.8  # one full cycle, both steps (Unitree's G1 training: 0.8 s)
    stance_fraction: float = 0.55  # share of each foot's cycle in contact
    swing_height_m: float = 0.08  # the swing's peak foot height the `gait_swing` term asks for
    # joint offsets (rad) at the top of a swing, added to the targets of the swinging leg along the clock's arch,
    # by joint-name fragment (e.g. {"knee" = 0.6}): a stepping pattern the policy corrects instead of discovering
    swing_joint_offsets_rad: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "swing_joint_offsets_rad", types.MappingProxyType(dict(self.swing_joint_offsets_rad)))
        for name, offset in self.swing_joint_offsets_rad.items():
            check_range(f"gait.swing_joint_offsets_rad.{name}", offset, -1.5, 1.5)
        check_range("gait.period_s", self.period_s, 0.1, 10.0)
        check_range("gait.stance_fraction", self.stance_fraction, 0.05, 0.95)
        check_range("gait.swing_height_m", self.swing_height_m, 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class DynamicsConfig:
    """A calibrated robot: a `DynamicsProfile` (`ogi.robots.dynamics`) simulated in place of the model's own joints
    and motors. See `WalkVecEnv` for what the env does with each of its values.

    profile: the profile's path (relative to the working directory), as given; "" for the model's own dynamics.
    toml: the profile's text. Set, it is what the env simulates and the path is a record, so that a run and its
        checkpoints keep the robot they trained on whatever later happens to the file (`from_file` fills it in);
        empty, the env reads the file.
    sha256: hex digest of the text's UTF-8 bytes (the file's bytes); set, a text that does not match it is an error.
    """

    profile: str = ""
    toml: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        if (self.toml or self.sha256) and not self.profile:
            raise ConfigError("dynamics.toml and dynamics.sha256 describe a profile file: set dynamics.profile too")
        if self.sha256 and (len(self.sha256) != 64 or set(self.sha256) - set("0123456789abcdef")):
            raise ConfigError(f"dynamics.sha256 = {self.sha256!r} must be 64 lowercase hex digits")

    @staticmethod
    def from_file(path: str | Path) -> DynamicsConfig:
        """The profile at `path` with its text and hash recorded; a missing or malformed profile is a
        `ProfileError` (a `ValueError`) naming the file and the field."""
        text = _read_profile_text(Path(path))
        recorded = DynamicsConfig(profile=str(path), toml=text, sha256=hashlib.sha256(text.encode()).hexdigest())
        recorded.load()
        return recorded

    def load(self) -> DynamicsProfile | None:
        """The `DynamicsProfile` to simulate, or None without one; its text is `toml`, or the file's if empty."""
        if not self.profile:
            return None
        from ogi.robots.dynamics import ProfileError, parse_profile

        text = self.toml or _read_profile_text(Path(self.profile))
        digest = hashlib.sha256(text.encode()).hexdigest()
        if self.sha256 and digest != self.sha256:
            raise ProfileError(
                f"{self.profile}: its sha256 is {digest}, not the {self.sha256} recorded with this config: "
                "the profile changed"
            )
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ProfileError(f"{self.profile}: not valid TOML: {err}") from None
        return parse_profile(doc, self.profile)


def _read_profile_text(path: Path) -> str:
    from ogi.robots.dynamics import ProfileError

    try:
        # bytes, not read_text: newline translation would change what the hash covers
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such dynamics profile") from None
    except IsADirectoryError:
        raise ProfileError(f"{path}: a dynamics profile must be a TOML file, not a directory") from None
    except UnicodeDecodeError as err:
        raise ProfileError(f"{path}: not valid TOML: {err}") from None


@dataclass(frozen=True, kw_only=True)
class WalkConfig:
    """The `walk` task: track a commanded base velocity (vx, vy, yaw rate)."""

    robot: str = "go2"
    num_envs: int = 64
    episode_length_s: float = 20.0
    action_clip: float = 4.0  # actions are clipped to [-action_clip, action_clip] before scaling
    # joints held at their default pose whatever the policy outputs (their actions read as zero), by name
    # fragment: e.g. a humanoid's arms while it learns to walk, left to a manipulation policy later
    held_joints: tuple[str, ...] = ()
    # > 0: the held joints are not still but moved, as a manipulation policy would move them, to random targets
    # within this fraction of the way from the default pose to their limits, a new target every
    # `held_motion_period_s` (uniform), each reached over `HELD_MOTION_MOVE_S`; the walker learns to balance under
    # moving arms and reads where they are
    held_motion: float = 0.0
    held_motion_period_s: tuple[float, float] = (1.0, 3.0)
    seed: int = 0
    sim: SimConfig = field(default_factory=SimConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    height_scan: HeightScanConfig = field(default_factory=HeightScanConfig)
    depth_camera: DepthCameraConfig = field(default_factory=DepthCameraConfig)
    gait: GaitConfig = field(default_factory=GaitConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)

    def __post_init__(self) -> None:
        check_int("num_envs", self.num_envs, 1, 1 << 20)
        check_range("episode_length_s", self.episode_length_s, self.sim.ctrl_dt_s, 1e6)
        check_range("action_clip", self.action_clip, 1e-3, 1e3)
        check_range("held_motion", self.held_motion, 0.0, 1.0)
        check_interval("held_motion_period_s", self.held_motion_period_s, self.sim.ctrl_dt_s, 1e6)

    @staticmethod
    def rough(**overrides: Any) -> WalkConfig:
        """The rough-terrain preset: every terrain kind with the curriculum, height scan and depth camera."""
        return WalkConfig(
            terrain=TerrainConfig(enabled=True),
            height_scan=HeightScanConfig(enabled=True),
            depth_camera=DepthCameraConfig(enabled=True),
            **overrides,
        )

    @property
    def max_episode_steps(self) -> int:
        return max(1, round(self.episode_length_s / self.sim.ctrl_dt_s))


def load_walk_config(path: Path, **overrides: Any) -> WalkConfig:
    """Read a `WalkConfig` from a TOML file; errors name the file and the field."""
    cfg = config_from_toml(WalkConfig, path)
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def held_joint_mask(joint_names: tuple[str, ...], fragments: tuple[str, ...]) -> Any:
    """(j,) bool: the joints whose names contain one of `fragments`; a fragment that names none is an error."""
    unmatched = [f for f in fragments if not any(f in j for j in joint_names)]
    if unmatched:
        raise ValueError(f"held_joints {unmatched} name none of the robot's joints: {', '.join(joint_names)}")
    import numpy as np

    return np.array([any(f in j for f in fragments) for j in joint_names], dtype=bool)
