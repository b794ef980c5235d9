"""A picture of the terrain family: one rendered cell per (kind, difficulty), the robot standing on each tile."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import mujoco
import numpy as np

from ogi.envs.config import SimConfig, TerrainConfig
from ogi.envs.rig import Rig
from ogi.envs.terrain_grid import build_terrain_grid
from ogi.rendering import offscreen_renderer
from ogi.robots import RobotSpec

SEPARATOR_RGB = (255, 255, 255)


def render_terrain_preview(
    robot: RobotSpec,
    terrain: TerrainConfig,
    difficulties: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
    cell_px: tuple[int, int] = (240, 180),
    camera_distance_m: float = 2.8,
) -> np.ndarray:
    """(rows * h, cols * w, 3) uint8 image: terrain kinds down the rows, difficulties across the columns.

    Needs an offscreen OpenGL context (MUJOCO_GL=egl on a headless machine); raises OffscreenGLError without one.
    """
    levels = terrain.curriculum.num_levels
    grid = build_terrain_grid(terrain.kinds, levels, terrain.tile_size_m, terrain.resolution_m, terrain.seed)
    rig = Rig(robot, SimConfig(), randomize=False, terrain=grid)
    model = rig.model
    data = mujoco.MjData(model)
    width, height = cell_px
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance = camera_distance_m
    camera.azimuth = 135.0
    camera.elevation = -28.0
    image = np.zeros((len(grid.kinds) * height, len(difficulties) * width, 3), dtype=np.uint8)
    with offscreen_renderer(model, height, width) as renderer:
        for row, kind in enumerate(range(grid.num_kinds)):
            for col, difficulty in enumerate(difficulties):
                level = round(difficulty * (levels - 1))
                origin = grid.tile_origin(np.array([kind]), np.array([level]))[0]
                mujoco.mj_resetDataKeyframe(model, data, rig.stand_key)
                feet = origin + rig.stand_foot_xy
                ground = float(max(grid.height_at(origin[None])[0], grid.height_at(feet).max()))
                a = rig.base_qpos_adr
                data.qpos[a : a + 3] = [origin[0], origin[1], ground + rig.stand_height_m]
                mujoco.mj_forward(model, data)
                camera.lookat[:] = [origin[0], origin[1], ground + 0.2]
                renderer.update_scene(data, camera=camera)
                image[row * height : (row + 1) * height, col * width : (col + 1) * width] = renderer.render()
    image[::height] = SEPARATOR_RGB
    image[:, ::width] = SEPARATOR_RGB
    return image


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an (h, w, 3) uint8 image as an 8-bit RGB PNG (zlib-compressed, no filtering)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)
