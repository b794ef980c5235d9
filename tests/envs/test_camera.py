import json
import math
import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest
from mujoco import batch as mjbatch

from ogi.envs.camera import HEAD_CAMERA, CameraConfig, RayCamera, RenderedCamera, add_head_camera
from ogi.rendering import OffscreenGLError
from ogi.validation import ConfigError

RED = (0.85, 0.12, 0.10)
BOX_X_M, BOX_HALF_M = 1.5, 0.15
BASE_Z_M = 0.3
AMBIENT, HEADLIGHT, SUN = 0.1, 0.4, 0.7
GROUND_RGB = (0.3, 0.35, 0.4)


def scene() -> mujoco.MjModel:
    """A plane (group 0), a red box ahead (group 2), a grey box in group 1 (as a robot's) right under the camera,
    a sun from straight above and the headlight with set strengths."""
    spec = mujoco.MjSpec()
    spec.visual.headlight.ambient = [AMBIENT] * 3
    spec.visual.headlight.diffuse = [HEADLIGHT] * 3
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1], group=0, rgba=[*GROUND_RGB, 1])
    spec.worldbody.add_geom(
        name="red", type=mujoco.mjtGeom.mjGEOM_BOX, size=[BOX_HALF_M] * 3, pos=[BOX_X_M, 0, BOX_HALF_M], rgba=[*RED, 1]
    )
    spec.geoms[-1].group = 2
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.5, 0.5, 0.05], pos=[0.8, 0, 0.2], group=1)
    spec.worldbody.add_light(
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, dir=[0, 0, -1], diffuse=[SUN] * 3, ambient=[0, 0, 0]
    )
    return spec.compile()


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def capture(cfg: CameraConfig, yaws: list[float], groups=(0, 2), base_z: float = BASE_Z_M) -> np.ndarray:
    model = scene()
    batch = mjbatch.Batch(model, len(yaws), nthread=1)
    batch.forward()
    colours = np.broadcast_to(model.geom_rgba[:, :3], (len(yaws), model.ngeom, 3))
    pos = np.tile([0.0, 0.0, base_z], (len(yaws), 1))
    return RayCamera(model, cfg, groups).capture(batch, pos, np.array([yaw_quat(y) for y in yaws]), colours)


def test_config_checks_its_fields():
    with pytest.raises(ConfigError, match="camera.width"):
        CameraConfig(width=0)
    with pytest.raises(ConfigError, match="camera.horizontal_fov_deg"):
        CameraConfig(horizontal_fov_deg=180.0)
    with pytest.raises(ConfigError, match="camera.mount_pos_m"):
        CameraConfig(mount_pos_m=(0.3, 0.0))
    # square pixels: tan(v/2) = tan(50 deg) * 24 / 32
    assert CameraConfig().vertical_fov_deg == pytest.approx(
        2 * math.degrees(math.atan(math.tan(math.radians(50)) * 0.75))
    )


def test_ray_directions_look_forward_pitched_down_left_to_right_top_to_bottom():
    cfg = CameraConfig(width=4, height=3, pitch_down_deg=12.0)
    d = cfg.ray_directions_body().reshape(3, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0)
    assert (d[:, :2, 1] > 0).all() and (d[:, 2:, 1] < 0).all()  # left columns look left (+y)
    assert d[0, 0, 2] > d[1, 0, 2] > d[2, 0, 2]  # rows go down
    # the middle row's centre looks 12 deg below the horizon; with a half-pixel offset only in x
    centre = d[1, 1:3].mean(axis=0)
    assert math.degrees(math.atan2(-centre[2], centre[0])) == pytest.approx(12.0, abs=1e-9)
    forward = cfg.axes_body()[:, 0]
    np.testing.assert_allclose(forward, [math.cos(math.radians(12)), 0, -math.sin(math.radians(12))])


def test_red_box_ahead_is_red_at_the_centre_at_its_depth_with_lambert_shading():
    cfg = CameraConfig()
    image = capture(cfg, [0.0, math.pi])
    assert image.shape == (2, 24, 32, 4) and image.dtype == np.float32
    directions = cfg.ray_directions_body().reshape(24, 32, 3)
    forward = cfg.axes_body()[:, 0]
    camera_x = cfg.mount_pos_m[0]
    for row, col in [(11, 15), (11, 16), (12, 15), (12, 16)]:
        d = directions[row, col]
        # the box's front face x = BOX_X - half: ray length t = (x_face - x_cam) / d_x, depth = t (d . forward)
        depth_m = (BOX_X_M - BOX_HALF_M - camera_x) / d[0] * (d @ forward)
        assert image[0, row, col, 3] == pytest.approx(depth_m / cfg.max_range_m, abs=1e-5)
        # face normal (-1, 0, 0): the headlight along `forward` gives cos(12 deg); the sun from above nothing
        brightness = AMBIENT + HEADLIGHT * math.cos(math.radians(12))
        np.testing.assert_allclose(image[0, row, col, :3], np.array(RED) * brightness, atol=1e-5)
    # turned around, the camera sees no red at all
    assert not (image[1, ..., 0] > 2 * image[1, ..., 1]).any()


def test_ground_and_sky_pixels():
    cfg = CameraConfig()
    image = capture(cfg, [math.pi])[0]
    directions = cfg.ray_directions_body().reshape(24, 32, 3)
    up = directions[..., 2] >= 0
    np.testing.assert_allclose(image[up][:, :3], np.broadcast_to(cfg.sky_rgb, (up.sum(), 3)), atol=1e-6)
    assert (image[up][:, 3] == 1.0).all()
    # the ground, lit from straight above by the sun; the headlight adds n . -forward = sin(12 deg)
    bottom = image[-1, 0]
    brightness = AMBIENT + SUN + HEADLIGHT * math.sin(math.radians(12))
    np.testing.assert_allclose(bottom[:3], np.clip(np.array(GROUND_RGB) * brightness, 0, 1), atol=1e-5)
    # a ray from height h = base z + mount z meets the ground after h / -d_z
    d = directions[-1, 0]
    height = BASE_Z_M + cfg.mount_pos_m[2]
    assert bottom[3] == pytest.approx(height / -d[2] * (d @ cfg.axes_body()[:, 0]) / cfg.max_range_m, abs=1e-5)


def test_geom_groups_hide_what_the_camera_must_not_see():
    # the group-1 slab lies between the camera and the ground; seen only when group 1 is asked for
    cfg = CameraConfig(pitch_down_deg=60.0)
    hidden = capture(cfg, [0.0], groups=(0, 2))
    shown = capture(cfg, [0.0], groups=(0, 1, 2))
    assert not np.allclose(hidden, shown)
    with pytest.raises(ValueError, match="geom group"):
        RayCamera(scene(), cfg, (0, 7))


def test_orientation_as_matrix_and_subsets_of_simulations():
    cfg = CameraConfig(width=8, height=6)
    model = scene()
    batch = mjbatch.Batch(model, 3, nthread=1)
    batch.forward()
    camera = RayCamera(model, cfg, (0, 2))
    colours = np.broadcast_to(model.geom_rgba[:, :3], (3, model.ngeom, 3))
    pos = np.tile([0.0, 0.0, BASE_Z_M], (3, 1))
    quats = np.array([yaw_quat(y) for y in (0.0, 0.4, -1.0)])
    matrices = np.zeros((3, 9))
    for quat, matrix in zip(quats, matrices):
        mujoco.mju_quat2Mat(matrix, quat)
    by_quat = camera.capture(batch, pos, quats, colours)
    np.testing.assert_allclose(camera.capture(batch, pos, matrices, colours), by_quat, atol=1e-6)
    np.testing.assert_array_equal(
        camera.capture(batch, pos[[2, 0]], quats[[2, 0]], colours[[2, 0]], [2, 0]), by_quat[[2, 0]]
    )


def test_head_camera_sits_at_the_mount_looking_along_the_pitched_axis():
    cfg = CameraConfig(mount_pos_m=(0.3, 0.0, 0.05), pitch_down_deg=20.0)
    spec = mujoco.MjSpec()
    spec.worldbody.add_body(name="base", pos=[0, 0, 0.4])
    add_head_camera(spec, "base", cfg)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    camera = model.camera(HEAD_CAMERA).id
    np.testing.assert_allclose(data.cam_xpos[camera], [0.3, 0, 0.45], atol=1e-9)
    # a MuJoCo camera looks along its -z axis, with +x to the image's right
    frame = data.cam_xmat[camera].reshape(3, 3)
    np.testing.assert_allclose(-frame[:, 2], cfg.axes_body()[:, 0], atol=1e-9)
    np.testing.assert_allclose(frame[:, 0], [0, -1, 0], atol=1e-9)
    assert model.cam_fovy[camera] == pytest.approx(cfg.vertical_fov_deg)


@pytest.mark.filterwarnings("ignore::UserWarning")  # GLFW says why it found no display
def test_rendered_camera_needs_the_head_camera_and_reports_missing_gl_cleanly():
    with pytest.raises(ValueError, match=HEAD_CAMERA):
        RenderedCamera(scene(), CameraConfig(), (0, 2))
    spec = mujoco.MjSpec()
    spec.worldbody.add_body(name="base")
    add_head_camera(spec, "base", CameraConfig())
    try:
        RenderedCamera(spec.compile(), CameraConfig(), (0, 2)).close()
    except OffscreenGLError as error:
        assert "install" in str(error)


# runs with MUJOCO_GL=egl in a child process: the variable must be set before mujoco is imported
_COMPARE = """
import json
import numpy as np
from ogi.envs.arena import ArenaConfig, ArenaVecEnv
from ogi.envs.config import SimConfig, WalkConfig
from ogi.envs.layout import Layout, Obstacle, SceneObject

env = ArenaVecEnv(ArenaConfig(), WalkConfig(num_envs=2, sim=SimConfig(nthread=1)))
scene = Layout(
    objects=(SceneObject("red", "box", (1.5, 0.0)), SceneObject("blue", "cone", (2.0, 1.0)),
             SceneObject("green", "pillar", (2.5, -1.2))),
    obstacles=(Obstacle((3.0, 0.3), (0.3, 0.2), 0.5),),
)
env.set_layouts([0, 1], [scene, Layout(objects=(SceneObject("yellow", "ball", (1.5, 0.0)),), start=(0, 0, 0.3))])
ray = env.camera()
camera = env.rendered_camera()
rendered = camera.capture(env.batch)
camera.close()
print(json.dumps({"ray": ray.tolist(), "rendered": rendered.tolist()}))
"""


def test_rendered_and_ray_cameras_agree():
    env = dict(os.environ, MUJOCO_GL="egl")
    result = subprocess.run([sys.executable, "-c", _COMPARE], env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and ("OpenGL" in result.stderr or "EGL" in result.stderr):
        pytest.skip(f"no EGL offscreen context: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout.strip().splitlines()[-1])
    ray, rendered = np.array(images["ray"]), np.array(images["rendered"])
    assert ray.shape == rendered.shape == (2, 24, 32, 4)
    centre = (slice(11, 13), slice(15, 17))
    for image in (ray[0], rendered[0]):
        red, green, blue = image[centre][..., :3].reshape(-1, 3).T
        assert (red > 2 * green).all() and (red > 2 * blue).all()
    for image in (ray[1], rendered[1]):  # the yellow ball, seen from a robot turned 0.3 rad left: right of centre
        yellow = (image[..., 0] > 1.5 * image[..., 2]) & (image[..., 1] > 1.5 * image[..., 2])
        assert yellow.any() and (np.flatnonzero(yellow.any(axis=0)) >= 16).all()
    # depth: both along the optical axis; they differ only where a pixel straddles an edge
    depth_error = np.abs(ray[..., 3] - rendered[..., 3]) * 8.0
    assert np.median(depth_error) < 0.01 and np.mean(depth_error < 0.05) > 0.97
    # colour: the checker texture and specular highlights are all that differ
    assert np.abs(ray[..., :3] - rendered[..., :3]).mean() < 0.05
