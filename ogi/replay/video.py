"""Offscreen video of one simulation of a recording, rendered by `mujoco.Renderer` and encoded as H.264 MP4.

Encoding uses the ffmpeg binary that the `imageio-ffmpeg` wheel carries. Rendering needs an OpenGL
context: MUJOCO_GL=egl on a machine without a display (`ogi.rendering.OffscreenGLError` without one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from ogi.rendering import offscreen_renderer
from ogi.replay.reader import Recording


@dataclass(frozen=True, kw_only=True)
class VideoConfig:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    camera: str = "track"  # "track": follow the base; "fixed": look at the start; or a model camera's name
    distance_m: float = 1.6
    azimuth_deg: float = 135.0
    elevation_deg: float = -20.0
    # software OpenGL spends most of a frame on these two
    shadows: bool = True
    reflections: bool = True

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not 16 <= value <= 4096 or value % 2:
                raise ValueError(f"video {name} {value} must be an even number of pixels in [16, 4096]")
        if not 1.0 <= self.fps <= 240.0:
            raise ValueError(f"video fps {self.fps} must be in [1, 240]")


def frame_steps(num_steps: int, ctrl_dt_s: float, fps: float) -> np.ndarray:
    """The recorded step (0: the initial state) each video frame shows: frames at t = i / fps."""
    duration_s = num_steps * ctrl_dt_s
    frames = max(1, int(np.floor(duration_s * fps + 1e-9)) + 1)
    return np.minimum(np.round(np.arange(frames) / fps / ctrl_dt_s).astype(np.int64), num_steps)


def sim_trajectory(recording: Recording, sim: int) -> tuple[np.ndarray, np.ndarray]:
    """(qpos (steps + 1, nq), qvel (steps + 1, nv)) of one simulation, the initial state first."""
    recording.check_sim(sim)
    model = recording.base_model()
    data = mujoco.MjData(model)
    mujoco.mj_setState(
        model, data, np.ascontiguousarray(recording.initial_state[sim]), int(recording.info["state_sig"])
    )
    qpos, qvel = [data.qpos.copy()], [data.qvel.copy()]
    for step in recording.steps():
        qpos.append(np.array(step.data["qpos"][sim]))
        qvel.append(np.array(step.data["qvel"][sim]))
    return np.stack(qpos), np.stack(qvel)


def _camera(model: mujoco.MjModel, cfg: VideoConfig, base_body: str, start_xyz: np.ndarray) -> mujoco.MjvCamera | int:
    if cfg.camera not in ("track", "fixed"):
        camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cfg.camera)
        if camera_id < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"camera '{cfg.camera}' is not in the model; use track, fixed or one of {names}")
        return camera_id
    camera = mujoco.MjvCamera()
    camera.distance, camera.azimuth, camera.elevation = cfg.distance_m, cfg.azimuth_deg, cfg.elevation_deg
    if cfg.camera == "track":
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = model.body(base_body).id
    else:
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = start_xyz
    return camera


def render_frames(recording: Recording, sim: int, cfg: VideoConfig, progress: Callable[[int, int], None] | None = None):
    """Yield (height, width, 3) uint8 frames of simulation `sim`; `progress(done, total)` after each."""
    qpos, _ = sim_trajectory(recording, sim)
    model = recording.sim_model(sim)
    data = mujoco.MjData(model)
    steps = frame_steps(len(qpos) - 1, float(recording.info["ctrl_dt_s"]), cfg.fps)
    data.qpos[:] = qpos[0]
    mujoco.mj_forward(model, data)
    base = model.body(recording.info["base_body"]).id
    camera = _camera(model, cfg, recording.info["base_body"], data.xpos[base].copy())
    with offscreen_renderer(model, cfg.height, cfg.width) as renderer:
        for i, step in enumerate(steps):
            data.qpos[:] = qpos[step]
            data.time = step * float(recording.info["ctrl_dt_s"])
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=camera)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = cfg.shadows
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = cfg.reflections
            yield renderer.render()
            if progress is not None:
                progress(i + 1, len(steps))


def write_video(
    recording: Recording, sim: int, out: Path, cfg: VideoConfig, progress: Callable[[int, int], None] | None = None
) -> int:
    """Render simulation `sim` to an MP4 file at `out`; returns the number of frames written."""
    import imageio_ffmpeg

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(
        str(out),
        (cfg.width, cfg.height),
        fps=cfg.fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=7,
        macro_block_size=2,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    count = 0
    try:
        for frame in render_frames(recording, sim, cfg, progress):
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        writer.close()
    return count
