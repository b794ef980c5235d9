"""The planner's egocentric RGB-D camera on the robot's head: ray cast over a whole batch, or rendered with OpenGL.

Both give the same image: (H, W, 4) float32, RGB in [0, 1] and channel 3 the depth along the optical axis over the
camera's range, clipped to [0, 1] (1 where nothing is hit). Rows run top to bottom and columns left to right, as a
picture. The ray camera shades a hit geom's colour with MuJoCo's own lights (the headlight and the model's
directional lights, diffuse only), so a planner's encoder sees much the same image from either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from ogi.validation import ConfigError, check_int, check_range

HEAD_CAMERA = "head_camera"  # the MuJoCo camera `add_head_camera` puts on the base, for rendering
_MJ_NGROUP = 6
_NEAR_CLIP_M, _FAR_CLIP_M = 0.02, 500.0  # the rendered camera's clip planes


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    """A pinhole camera fixed to the base, looking forward and pitched down."""

    width: int = 32
    height: int = 24
    horizontal_fov_deg: float = 100.0
    mount_pos_m: tuple[float, float, float] = (0.30, 0.0, 0.05)  # base frame: forward, left, up
    pitch_down_deg: float = 12.0
    max_range_m: float = 8.0
    sky_rgb: tuple[float, float, float] = (0.62, 0.74, 0.90)  # where a ray hits nothing

    def __post_init__(self) -> None:
        check_int("camera.width", self.width, 1, 1024)
        check_int("camera.height", self.height, 1, 1024)
        check_range("camera.horizontal_fov_deg", self.horizontal_fov_deg, 1.0, 170.0)
        check_range("camera.pitch_down_deg", self.pitch_down_deg, -90.0, 90.0)
        check_range("camera.max_range_m", self.max_range_m, 0.1, 1000.0)
        if len(self.mount_pos_m) != 3:
            raise ConfigError(f"camera.mount_pos_m = {self.mount_pos_m!r} must have 3 entries")
        for i, value in enumerate(self.mount_pos_m):
            check_range(f"camera.mount_pos_m[{i}]", value, -10.0, 10.0)
        if len(self.sky_rgb) != 3:
            raise ConfigError(f"camera.sky_rgb = {self.sky_rgb!r} must have 3 entries")
        for i, value in enumerate(self.sky_rgb):
            check_range(f"camera.sky_rgb[{i}]", value, 0.0, 1.0)

    @property
    def vertical_fov_deg(self) -> float:
        # tan(v/2) = tan(h/2) H / W: square pixels
        half = math.tan(math.radians(self.horizontal_fov_deg) / 2) * self.height / self.width
        return math.degrees(2 * math.atan(half))

    def axes_body(self) -> np.ndarray:
        """(3, 3) columns forward, left, up of the camera in the base frame."""
        pitch = math.radians(self.pitch_down_deg)
        c, s = math.cos(pitch), math.sin(pitch)
        forward = np.array([c, 0.0, -s])
        left = np.array([0.0, 1.0, 0.0])
        up = np.array([s, 0.0, c])
        return np.column_stack([forward, left, up])

    def ray_directions_body(self) -> np.ndarray:
        """(H W, 3) unit directions through the pixel centres in the base frame, row-major image order."""
        half_h = math.tan(math.radians(self.horizontal_fov_deg) / 2)
        half_v = half_h * self.height / self.width
        u = ((np.arange(self.width) + 0.5) / self.width * 2 - 1) * half_h  # left..right
        v = ((np.arange(self.height) + 0.5) / self.height * 2 - 1) * half_v  # top..bottom
        gu, gv = np.meshgrid(u, v)
        cam = np.stack([np.ones_like(gu), -gu, -gv], axis=-1).reshape(-1, 3)  # forward, left, up
        cam /= np.linalg.norm(cam, axis=1, keepdims=True)
        return cam @ self.axes_body().T


def add_head_camera(spec: mujoco.MjSpec, base_body: str, cfg: CameraConfig) -> None:
    """A MuJoCo camera on `base_body` at the config's mount, for `RenderedCamera`; the physics ignores it."""
    forward, left, up = cfg.axes_body().T
    # a MuJoCo camera looks along its -z with +y up in the image and +x to the right
    frame = np.column_stack([-left, up, -forward])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, frame.ravel())
    spec.body(base_body).add_camera(name=HEAD_CAMERA, pos=list(cfg.mount_pos_m), quat=quat, fovy=cfg.vertical_fov_deg)


def group_mask(groups: Sequence[int]) -> np.ndarray:
    """(mjNGROUP,) uint8 with 1 at each geom group in `groups`."""
    mask = np.zeros(_MJ_NGROUP, dtype=np.uint8)
    for group in groups:
        if not 0 <= group < _MJ_NGROUP:
            raise ValueError(f"geom group {group} outside 0..{_MJ_NGROUP - 1}")
        mask[group] = 1
    return mask


@dataclass(frozen=True)
class _Lights:
    """MuJoCo's lights as diffuse shading sees them: ambient, the headlight, and directional lights."""

    ambient: float
    headlight: float
    directions: np.ndarray  # (l, 3) world directions the light travels
    diffuse: np.ndarray  # (l,)

    @staticmethod
    def of(model: mujoco.MjModel) -> _Lights:
        head = model.vis.headlight
        ambient = float(np.mean(head.ambient)) if head.active else 0.0
        directional = (model.light_type == mujoco.mjtLightType.mjLIGHT_DIRECTIONAL) & model.light_active.astype(bool)
        ambient += float(model.light_ambient[directional].mean(axis=1).sum()) if directional.any() else 0.0
        directions = model.light_dir[directional]
        directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        return _Lights(
            ambient=ambient,
            headlight=float(np.mean(head.diffuse)) if head.active else 0.0,
            directions=directions,
            diffuse=model.light_diffuse[directional].mean(axis=1),
        )

    def shade(self, normal: np.ndarray, view_forward: np.ndarray) -> np.ndarray:
        """(k, p) brightness of surfaces with world normals (k, p, 3) seen by cameras looking along (k, 3).

        Lambert: ambient + sum_l diffuse_l max(0, n . -d_l), the headlight shining along the view direction.
        """
        brightness = self.ambient + self.headlight * np.maximum(0.0, -(normal @ view_forward[:, :, None])[..., 0])
        for direction, diffuse in zip(self.directions, self.diffuse):
            brightness += diffuse * np.maximum(0.0, -(normal @ direction))
        return brightness


def _orientation_matrix(orientation: np.ndarray) -> np.ndarray:
    """(k, 3, 3) rotation of base quaternions (k, 4) (w first) or of matrices (k, 9) / (k, 3, 3)."""
    orientation = np.asarray(orientation, dtype=np.float64)
    if orientation.ndim == 2 and orientation.shape[1] == 4:
        w, x, y, z = (orientation / np.linalg.norm(orientation, axis=1, keepdims=True)).T
        return np.stack(
            [
                np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
                np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
                np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
            ],
            axis=1,
        )
    return orientation.reshape(-1, 3, 3)


class RayCamera:
    """RGB-D images of many simulations at once from one `Batch.ray` call.

    `groups` are the geom groups the camera sees (the ground's and the scene objects', never the robot's).
    """

    def __init__(self, model: mujoco.MjModel, cfg: CameraConfig, groups: Sequence[int]):
        self.cfg = cfg
        self.geomgroup = group_mask(groups)
        self.directions_body = cfg.ray_directions_body()  # (p, 3)
        # depth along the optical axis = ray length * cos(angle between the ray and the axis)
        self.axial = self.directions_body @ cfg.axes_body()[:, 0]
        self.mount = np.asarray(cfg.mount_pos_m, dtype=np.float64)
        self.lights = _Lights.of(model)
        self.sky = np.asarray(cfg.sky_rgb, dtype=np.float32)

    def capture(
        self,
        batch,
        base_pos: np.ndarray,
        base_orientation: np.ndarray,
        colours: np.ndarray,
        ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """(k, H, W, 4) float32 RGB-D of simulations `ids` (all if None).

        base_pos (k, 3) m, base_orientation (k, 4) quaternion (w first) or (k, 9) rotation matrix, and colours
        (k, ngeom, 3) RGB of each geom: all rows in the order of `ids`. Reads the batch's state; changes nothing.
        """
        if ids is not None:
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
            if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
                # the batch takes its simulations in increasing order, each once
                unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
                rows = (np.asarray(base_pos)[first], np.asarray(base_orientation)[first], np.asarray(colours)[first])
                return self.capture(batch, *rows, ids=unique)[inverse]
        rotation = _orientation_matrix(base_orientation)
        origin = np.asarray(base_pos, dtype=np.float64) + rotation @ self.mount  # (k, 3)
        directions = self.directions_body @ rotation.transpose(0, 2, 1)  # (k, p, 3): R d per ray
        dist, geom, normal = batch.ray(
            np.ascontiguousarray(np.broadcast_to(origin[:, None, :], directions.shape)),
            directions,
            geomgroup=self.geomgroup,
            ids=ids,
            normal=True,
        )
        return self._image(rotation, directions, dist, geom, normal, colours)

    def capture_data(
        self, model: mujoco.MjModel, data: mujoco.MjData, base_pos: np.ndarray, base_orientation: np.ndarray, colours
    ) -> np.ndarray:
        """(H, W, 4) float32 RGB-D of one simulation (`MjData`, kinematics current): the image `capture` gives,
        from one `mj_multiRay` (every ray leaves the same point). base_pos (3,), base_orientation (4,) or (9,),
        colours (ngeom, 3)."""
        rotation = _orientation_matrix(np.asarray(base_orientation, dtype=np.float64)[None])
        origin = np.asarray(base_pos, dtype=np.float64) + rotation[0] @ self.mount
        directions = self.directions_body @ rotation[0].T  # (p, 3)
        p = directions.shape[0]
        geom = np.zeros(p, dtype=np.int32)
        dist = np.zeros(p)
        normal = np.zeros(p * 3)
        mujoco.mj_multiRay(
            model, data, origin, directions.ravel(), self.geomgroup, 1, -1, geom, dist, normal, p, mujoco.mjMAXVAL
        )
        image = self._image(
            rotation, directions[None], dist[None], geom[None], normal.reshape(1, p, 3), np.asarray(colours)[None]
        )
        return image[0]

    def _image(self, rotation, directions, dist, geom, normal, colours) -> np.ndarray:
        cfg = self.cfg
        k = rotation.shape[0]
        hit = geom >= 0
        rows = np.arange(k)[:, None]
        base_rgb = np.asarray(colours)[rows, np.maximum(geom, 0)]  # (k, p, 3)
        # a surface seen from behind (a plane's underside) is shaded as its front
        backside = (normal * directions).sum(axis=-1, keepdims=True) > 0
        normal = np.where(backside, -normal, normal)
        brightness = self.lights.shade(normal, rotation @ cfg.axes_body()[:, 0])
        rgb = np.where(hit[..., None], np.clip(base_rgb * brightness[..., None], 0.0, 1.0), self.sky)
        depth = np.where(hit, np.clip(dist * self.axial / cfg.max_range_m, 0.0, 1.0), 1.0)
        image = np.concatenate([rgb, depth[..., None]], axis=-1).astype(np.float32)
        return image.reshape(k, cfg.height, cfg.width, 4)


class RenderedCamera:
    """The same RGB-D image rendered with OpenGL (`mujoco.Renderer`), one simulation at a time.

    Needs a model with the `HEAD_CAMERA` (`add_head_camera`); raises `ogi.rendering.OffscreenGLError` without an
    offscreen OpenGL context (MUJOCO_GL=egl on a headless machine). Shadows and reflections are off, as in the ray
    camera; the ground shows its checker texture where the ray camera sees its mean colour.
    """

    def __init__(self, model: mujoco.MjModel, cfg: CameraConfig, groups: Sequence[int]):
        from ogi.rendering import offscreen_renderer

        self.cfg = cfg
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, HEAD_CAMERA) < 0:
            raise ValueError(f"the model has no camera {HEAD_CAMERA!r}; add it with add_head_camera")
        self.model = model.__copy__()
        self.data = mujoco.MjData(self.model)
        self.camera_id = self.model.camera(HEAD_CAMERA).id
        self.renderer = offscreen_renderer(self.model, cfg.height, cfg.width)
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            self.renderer.scene.flags[flag] = 0
        self.option = mujoco.MjvOption()
        self.option.geomgroup[:] = group_mask(groups)
        self.option.sitegroup[:] = 0
        self.sky = np.asarray(cfg.sky_rgb, dtype=np.float32)

    def capture(self, batch, ids: Sequence[int] | None = None) -> np.ndarray:
        """(k, H, W, 4) float32 RGB-D of simulations `ids` (all if None), each from its own model and state."""
        ids = range(batch.nsim) if ids is None else ids
        return np.stack([self._capture_one(batch, int(i)) for i in ids])

    def _capture_one(self, batch, sim: int) -> np.ndarray:
        cfg, model, data = self.cfg, self.model, self.data
        batch.get_model(sim, model)
        # clip planes are fractions of the model's extent, which far-off parked objects make large
        model.vis.map.znear = _NEAR_CLIP_M / model.stat.extent
        model.vis.map.zfar = _FAR_CLIP_M / model.stat.extent
        batch.get_data(sim, data)
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        self.renderer.update_scene(data, camera=self.camera_id, scene_option=self.option)
        rgb = self.renderer.render().astype(np.float32) / 255.0
        self.renderer.enable_depth_rendering()
        try:
            depth = self.renderer.render().astype(np.float64)
        finally:
            self.renderer.disable_depth_rendering()
        sky = depth >= 0.999 * _FAR_CLIP_M
        rgb[sky] = self.sky
        depth = np.where(sky, 1.0, np.clip(depth / cfg.max_range_m, 0.0, 1.0))
        return np.concatenate([rgb, depth[..., None].astype(np.float32)], axis=-1)

    def close(self) -> None:
        self.renderer.close()
