"""Watch a recording in MuJoCo's own viewers: the Studio web viewer (headless or remote), or `mujoco.viewer`.

Both show one simulation of the batch, frame by frame from the recorded states (no physics runs).
In the web viewer, Studio's own controls drive playback: play/pause, speed, and the history
scrubber, which spans the whole recording. In the native viewer: space plays/pauses, left/right
step one frame back/forward (holding pauses), up/down double/halve the speed, backspace rewinds.
"""

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from ogi.replay.reader import Recording
from ogi.replay.video import sim_trajectory

FRAME_PERIOD_S = 1.0 / 60.0  # how often the playback loop shows a frame
LOOPBACK_HOST = "127.0.0.1"


class UnauthenticatedViewerWarning(UserWarning):
    """The web viewer serves the recording to anyone who can reach its port."""


@dataclass
class Playback:
    """Where playback stands in a sequence of frames recorded every `frame_dt_s`; speed in percent of real time."""

    num_frames: int
    frame_dt_s: float
    position: float = 0.0  # frames, fractional while playing
    speed_percent: float = 100.0
    paused: bool = False
    loop: bool = True
    _last_wall_s: float | None = field(default=None, repr=False)

    @property
    def frame(self) -> int:
        # the small slack keeps wall-clock rounding (4.9999999 frames) from showing the previous frame
        return min(int(self.position + 1e-6), self.num_frames - 1)

    def advance(self, wall_s: float) -> int:
        """Move on by the wall time since the last call (at `speed_percent`); the frame to show."""
        if self._last_wall_s is not None and not self.paused:
            self.position += (wall_s - self._last_wall_s) * self.speed_percent / 100.0 / self.frame_dt_s
            if self.position >= self.num_frames:
                self.position = self.position % self.num_frames if self.loop else self.num_frames - 1
        self._last_wall_s = wall_s
        return self.frame

    def seek(self, frame: int) -> int:
        self.position = float(np.clip(frame, 0, self.num_frames - 1))
        return self.frame

    def step(self, frames: int) -> int:
        """Pause and move by whole frames."""
        self.paused = True
        return self.seek(self.frame + frames)


def _show(
    model: mujoco.MjModel, data: mujoco.MjData, qpos: np.ndarray, qvel: np.ndarray, frame: int, dt: float
) -> None:
    data.qpos[:] = qpos[frame]
    data.qvel[:] = qvel[frame]
    data.time = frame * dt
    mujoco.mj_forward(model, data)


def viewer_model(
    recording: Recording, sim: int, offset_m: tuple[float, float, float] = (1.0, -1.0, 0.45)
) -> mujoco.MjModel:
    """Simulation `sim`'s model with a camera that follows the base, the viewer's default camera.

    The camera keeps `offset_m` from the robot's centre of mass (world axes) and looks at it.
    """
    spec = mujoco.MjSpec.from_string(recording.xml)
    back = np.asarray(offset_m, dtype=float) / np.linalg.norm(offset_m)  # camera z: from the robot to the camera
    right = np.cross(-back, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    camera = spec.body(recording.info["base_body"]).add_camera(name="replay_track", pos=list(offset_m))
    camera.mode = mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM
    camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    camera.alt.xyaxes = [*right, *up]
    model = spec.compile()
    exact = recording.sim_model(sim)
    # kinematics only need the recorded body frames; copy every field the camera did not resize
    for name in (
        "body_pos",
        "body_quat",
        "body_ipos",
        "body_iquat",
        "geom_pos",
        "geom_quat",
        "geom_size",
        "site_pos",
        "site_quat",
    ):
        getattr(model, name)[...] = getattr(exact, name)
    model.vis.global_.cameraid = model.camera("replay_track").id
    return model


def _playback_plugin(playback: Playback, qpos: np.ndarray, qvel: np.ndarray):
    """A Studio sim plugin that plays the frames instead of stepping physics (built lazily: Studio is optional)."""
    from mujoco.studio import messages, plugin, sim
    from mujoco.studio.sim_history import SimHistorySnapshot

    class RecordingPlayback(plugin.SimPlugin):
        def __init__(self) -> None:
            self.control = sim.StepControl()
            self._sent: tuple | None = None

        def _report(self) -> None:
            n = playback.num_frames
            state = (playback.paused, playback.speed_percent, playback.frame)
            if state == self._sent:
                return
            self._sent = state
            self.control.set_pause_state(sim.PauseState.NORMAL_PAUSED if playback.paused else sim.PauseState.UNPAUSED)
            self.control.set_speed(playback.speed_percent)
            self.handle.send_to_viewer(messages.StepControlSnapshot.from_step_control(self.control))
            # Studio's scrubber: index 0 is the newest frame, 1 - size the oldest
            self.handle.send_to_viewer(
                SimHistorySnapshot(
                    size=n, index=playback.frame - (n - 1), head_time=(n - 1) * playback.frame_dt_s, tail_time=0.0
                )
            )

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_step(self, event: messages.StepEvent) -> bool:
            frame = playback.advance(time.monotonic())
            _show(event.model, event.data, qpos, qvel, frame, playback.frame_dt_s)
            self._report()
            time.sleep(FRAME_PERIOD_S)
            return True

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_step_control(self, event: messages.StepControlSnapshot) -> bool:
            playback.paused = event.pause_state != sim.PauseState.UNPAUSED
            playback.speed_percent = float(event.speed)
            return True

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_pause(self, event: messages.RequestPauseEvent) -> bool:
            playback.paused = event.pause_state != sim.PauseState.UNPAUSED
            return True

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_single_step(self, _: messages.SingleStepEvent) -> bool:
            playback.step(1)
            return True

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_scrub(self, snapshot: SimHistorySnapshot) -> bool:
            playback.paused = True
            playback.seek(playback.num_frames - 1 + int(snapshot.index))
            return True

        @messages.handler(priority=messages.Priority.INTERNAL)
        def _on_reset(self, _: messages.ResetEvent) -> None:
            playback.seek(0)

    return RecordingPlayback()


def _loopback_web_viewer_class():
    from mujoco.studio import web_viewer

    class LoopbackWebViewer(web_viewer.WebViewer):
        """Studio's web viewer listening on loopback only (Studio itself binds every interface)."""

        @property
        def _host(self) -> str:
            return LOOPBACK_HOST

        @_host.setter
        def _host(self, _value: str) -> None:
            pass  # Studio assigns its all-interfaces default here

    return LoopbackWebViewer


def launch_web(recording: Recording, sim: int, *, port: int = 0, loopback_only: bool = True):
    """Start the Studio web viewer on `recording`'s simulation `sim`; returns (handle, url, playback).

    The caller runs the loop: `while handle.is_running(): handle.sync()` (`run_web` does).
    port 0 takes the first free port in 8080-8099. The viewer has no authentication.
    """
    from mujoco.studio import launch_thread, plugin, viewer_protocol
    from mujoco.studio.app.plugins import App
    from mujoco.studio.web_viewer import WebViewer

    qpos, qvel = sim_trajectory(recording, sim)
    model = viewer_model(recording, sim)
    playback = Playback(num_frames=len(qpos), frame_dt_s=float(recording.info["ctrl_dt_s"]))
    config = viewer_protocol.ViewerConfig(gfx="web", http_port=port, title=f"{recording.path.name} (simulation {sim})")
    viewer_class = _loopback_web_viewer_class() if loopback_only else WebViewer
    plugins = [App(), _playback_plugin(playback, qpos, qvel)]
    viewer_plugins, sim_plugins = plugin.split_plugins(plugins)
    bound: dict[str, int] = {}

    def target(endpoint) -> None:
        viewer = viewer_class(config, endpoint, plugins=viewer_plugins)
        bound["port"] = viewer._http_port
        viewer_protocol.run_viewer_loop(viewer)

    where = "loopback only" if loopback_only else "ALL network interfaces"
    warnings.warn(
        f"the web viewer has no authentication or encryption; it listens on {where}: anyone who can reach "
        "the port sees the recording",
        UnauthenticatedViewerWarning,
        stacklevel=2,
    )
    handle = launch_thread.launch_thread(target, sim_plugins=sim_plugins)
    data = mujoco.MjData(model)
    _show(model, data, qpos, qvel, 0, playback.frame_dt_s)
    handle.set_model(model, data=data)
    deadline = time.monotonic() + 30.0
    while "port" not in bound:
        if not handle.is_running() or time.monotonic() > deadline:
            try:
                handle.close()
            except Exception as err:  # the viewer thread's own error, e.g. the port is taken
                raise RuntimeError(f"the web viewer did not start: {err}") from None
            raise RuntimeError("the web viewer did not start within 30 s")
        time.sleep(0.05)
    host = LOOPBACK_HOST if loopback_only else "localhost"
    return handle, f"http://{host}:{bound['port']}/", playback


def run_web(
    recording: Recording,
    sim: int,
    *,
    port: int = 0,
    loopback_only: bool = True,
    on_url: Callable[[str], None] | None = None,
) -> None:
    """Serve the recording until the viewer closes or Ctrl+C."""
    handle, url, _ = launch_web(recording, sim, port=port, loopback_only=loopback_only)
    if on_url is not None:
        on_url(url)
    try:
        while handle.is_running():
            handle.sync()
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()


_KEY_SPACE, _KEY_BACKSPACE, _KEY_RIGHT, _KEY_LEFT, _KEY_DOWN, _KEY_UP = 32, 259, 262, 263, 264, 265


def run_native(recording: Recording, sim: int) -> None:
    """Play the recording in `mujoco.viewer` (needs a display) until its window closes."""
    import mujoco.viewer

    qpos, qvel = sim_trajectory(recording, sim)
    model = recording.sim_model(sim)
    data = mujoco.MjData(model)
    playback = Playback(num_frames=len(qpos), frame_dt_s=float(recording.info["ctrl_dt_s"]))

    def on_key(key: int) -> None:
        if key == _KEY_SPACE:
            playback.paused = not playback.paused
        elif key == _KEY_RIGHT:
            playback.step(1)
        elif key == _KEY_LEFT:
            playback.step(-1)
        elif key == _KEY_UP:
            playback.speed_percent = min(playback.speed_percent * 2, 1600.0)
        elif key == _KEY_DOWN:
            playback.speed_percent = max(playback.speed_percent / 2, 6.25)
        elif key == _KEY_BACKSPACE:
            playback.seek(0)

    with mujoco.viewer.launch_passive(model, data, key_callback=on_key) as viewer:
        viewer.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        viewer.cam.trackbodyid = model.body(recording.info["base_body"]).id
        viewer.cam.distance = 1.6
        while viewer.is_running():
            frame = playback.advance(time.monotonic())
            with viewer.lock():
                _show(model, data, qpos, qvel, frame, playback.frame_dt_s)
            viewer.sync()
            time.sleep(FRAME_PERIOD_S)
