"""Exteroception by ray casting: a privileged height scan and a downward depth camera.

The height scan casts `Batch.ray` against the ground's geom group only, so the robot never sees itself; the
depth camera marches its rays through the ground's heightfield, which holds no robot geom either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ogi.envs.observations import quat_rotate_inverse
from ogi.validation import ConfigError, check_range

GROUND_GROUP = 0  # geom group of ground and terrain; robot geoms are kept out of it
RAY_GEOMGROUP = np.array([1 if g == GROUND_GROUP else 0 for g in range(6)], dtype=np.uint8)


@dataclass(frozen=True, kw_only=True)
class HeightScanConfig:
    """A yaw-aligned grid of vertical rays around the base (privileged: a clean map of the ground)."""

    enabled: bool = False
    length_m: float = 1.6  # along the heading
    width_m: float = 1.0
    spacing_m: float = 0.1
    ray_start_above_base_m: float = 1.0

    def __post_init__(self) -> None:
        check_range("height_scan.length_m", self.length_m, 0.0, 20.0)
        check_range("height_scan.width_m", self.width_m, 0.0, 20.0)
        check_range("height_scan.spacing_m", self.spacing_m, 0.01, 5.0)
        check_range("height_scan.ray_start_above_base_m", self.ray_start_above_base_m, 0.0, 10.0)

    def offsets(self) -> np.ndarray:
        """(r, 2) ray xy offsets in the heading frame, row-major with x fastest."""
        xs = np.arange(-self.length_m / 2, self.length_m / 2 + 1e-9, self.spacing_m)
        ys = np.arange(-self.width_m / 2, self.width_m / 2 + 1e-9, self.spacing_m)
        gx, gy = np.meshgrid(xs, ys)
        return np.column_stack([gx.ravel(), gy.ravel()])


@dataclass(frozen=True, kw_only=True)
class DepthCameraConfig:
    """A low-resolution pinhole depth camera fixed to the base, pitched down at the ground ahead."""

    enabled: bool = False
    width: int = 12
    height: int = 9
    vertical_fov_rad: float = 1.0
    pitch_down_rad: float = 0.9
    mount_pos_m: tuple[float, float, float] = (0.25, 0.0, 0.0)  # base frame
    max_range_m: float = 2.0
    noise_std_m: float = 0.01
    dropout_probability: float = 0.02  # pixels lost to 0, as on a real depth sensor

    def __post_init__(self) -> None:
        check_range("depth_camera.width", self.width, 1, 256)
        check_range("depth_camera.height", self.height, 1, 256)
        check_range("depth_camera.vertical_fov_rad", self.vertical_fov_rad, 0.01, 3.0)
        check_range("depth_camera.pitch_down_rad", self.pitch_down_rad, -math.pi / 2, math.pi / 2)
        check_range("depth_camera.max_range_m", self.max_range_m, 0.05, 100.0)
        check_range("depth_camera.noise_std_m", self.noise_std_m, 0.0, 1.0)
        check_range("depth_camera.dropout_probability", self.dropout_probability, 0.0, 1.0)
        if len(self.mount_pos_m) != 3:
            raise ConfigError(f"depth_camera.mount_pos_m = {self.mount_pos_m!r} must have 3 entries")

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def ray_directions_body(self) -> np.ndarray:
        """(p, 3) unit ray directions in the base frame (x forward, z up), row-major image order."""
        aspect = self.width / self.height
        half_v = math.tan(self.vertical_fov_rad / 2)
        u = (np.arange(self.width) + 0.5) / self.width * 2 - 1  # left..right
        v = (np.arange(self.height) + 0.5) / self.height * 2 - 1  # top..bottom
        gu, gv = np.meshgrid(u, v)
        # camera frame: forward x, left y, up z, before pitching
        cam = np.stack([np.ones_like(gu), -gu * half_v * aspect, -gv * half_v], axis=-1).reshape(-1, 3)
        cam /= np.linalg.norm(cam, axis=1, keepdims=True)
        c, s = math.cos(self.pitch_down_rad), math.sin(self.pitch_down_rad)
        pitch = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # rotate forward axis downward
        return cam @ pitch.T


def quat_rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """R(q) v for quat (n, 4) and vec (n, r, 3) or (n, 3)."""
    conj = quat_wxyz * np.array([1.0, -1.0, -1.0, -1.0])
    if vec.ndim == 2:
        return quat_rotate_inverse(conj, vec)
    n, r, _ = vec.shape
    return quat_rotate_inverse(np.repeat(conj, r, axis=0), vec.reshape(n * r, 3)).reshape(n, r, 3)


def yaw_of(quat_wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = quat_wxyz.T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def height_scan(
    batch,
    base_pos: np.ndarray,
    base_quat: np.ndarray,
    cfg: HeightScanConfig,
    offsets: np.ndarray,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """(n, r) ground height below each scan point relative to the base, m (base z minus ground z).

    base_pos, base_quat are those of the simulations `ids` (all when None), in that order.

    Rays that find no ground (over a hole deeper than the ray) read as the ray's full length.
    """
    yaw = yaw_of(base_quat)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x = base_pos[:, None, 0] + c * offsets[None, :, 0] - s * offsets[None, :, 1]
    y = base_pos[:, None, 1] + s * offsets[None, :, 0] + c * offsets[None, :, 1]
    start_z = base_pos[:, 2] + cfg.ray_start_above_base_m
    points = np.stack([x, y, np.broadcast_to(start_z[:, None], x.shape)], axis=-1)
    dist, _ = batch.ray(points, np.array([0.0, 0.0, -1.0]), geomgroup=RAY_GEOMGROUP, ids=ids)
    max_len = cfg.ray_start_above_base_m + 10.0
    dist = np.where(dist < 0, max_len, dist)
    return dist - cfg.ray_start_above_base_m


def march_rays(
    origin: np.ndarray,
    directions: np.ndarray,
    height_at: Callable[[np.ndarray], np.ndarray],
    max_range_m: float,
    step_m: float,
    refinements: int = 4,
) -> np.ndarray:
    """(n, p) distance along each ray to its first crossing of the ground surface z = height_at(x, y).

    origin (n, 3), directions (n, p, 3) unit. The ray is sampled every step_m to bracket the first sample under
    the ground, then the bracket is bisected `refinements` times and the crossing placed by linear
    interpolation inside it (error well under step_m / 2^refinements on a smooth surface). A ray that stays
    above the ground reads max_range_m.
    """
    ts = np.arange(step_m, max_range_m + step_m / 2, step_m)  # (k,)
    points = origin[:, None, None, :] + directions[:, :, None, :] * ts[None, None, :, None]  # (n, p, k, 3)
    below = points[..., 2] <= height_at(points[..., :2])  # (n, p, k)
    hit = below.any(axis=2)
    first = np.argmax(below, axis=2)
    hi = ts[first]  # first sample under the ground
    lo = np.where(first > 0, ts[np.maximum(first - 1, 0)], 0.0)  # last sample above it (or the origin)

    def height_above(t: np.ndarray) -> np.ndarray:
        p = origin[:, None, :] + directions * t[..., None]
        return p[..., 2] - height_at(p[..., :2])

    for _ in range(refinements):
        mid = 0.5 * (lo + hi)
        under = height_above(mid) <= 0.0
        hi = np.where(under, mid, hi)
        lo = np.where(under, lo, mid)
    a_lo, a_hi = height_above(lo), height_above(hi)
    # linear crossing inside [lo, hi]: a_lo + (a_hi - a_lo) f = 0
    span = a_lo - a_hi
    fraction = np.clip(np.where(span > 1e-12, a_lo / np.where(span > 1e-12, span, 1.0), 1.0), 0.0, 1.0)
    return np.where(hit, lo + fraction * (hi - lo), max_range_m)


def depth_image(
    base_pos: np.ndarray,
    base_quat: np.ndarray,
    cfg: DepthCameraConfig,
    directions_body: np.ndarray,
    height_at: Callable[[np.ndarray], np.ndarray],
    step_m: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, p) noisy depth along each pixel's ray, scaled to [0, 1] by max_range_m; 0 marks a dropped pixel.

    The rays are marched against the ground's own heightfield (which holds every terrain geom and none of the
    robot's): MuJoCo's ray test of a heightfield scans every cell under a slanted ray's path, which cost
    30-300 ms per policy step for 64 cameras, against a few ms here.
    """
    n = base_pos.shape[0]
    origin = base_pos + quat_rotate(base_quat, np.broadcast_to(np.asarray(cfg.mount_pos_m), (n, 3)).copy())
    dirs = quat_rotate(base_quat, np.broadcast_to(directions_body, (n, *directions_body.shape)).copy())
    depth = march_rays(origin, dirs, height_at, cfg.max_range_m, max(step_m, 0.2))
    if cfg.noise_std_m > 0:
        depth = depth + rng.normal(0.0, cfg.noise_std_m, depth.shape)
    depth = np.clip(depth, 0.0, cfg.max_range_m) / cfg.max_range_m
    if cfg.dropout_probability > 0:
        depth[rng.random(depth.shape) < cfg.dropout_probability] = 0.0
    return depth
