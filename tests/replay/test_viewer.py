import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from ogi.replay.viewer import Playback

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_playback_follows_wall_time_speed_pause_and_seek():
    playback = Playback(num_frames=11, frame_dt_s=0.02)
    assert playback.advance(100.0) == 0  # the first call only starts the clock
    assert playback.advance(100.1) == 5  # 0.1 s at real time = 5 frames of 0.02 s
    playback.speed_percent = 50.0
    assert playback.advance(100.2) == 7  # 2.5 frames more
    playback.paused = True
    assert playback.advance(105.0) == 7
    assert playback.step(-3) == 4 and playback.paused
    assert playback.seek(99) == 10 and playback.seek(-5) == 0
    playback.paused, playback.speed_percent = False, 100.0
    playback.seek(9)
    assert playback.advance(105.06) == 1  # 3 frames on from 9 wraps past the end (11 frames)
    playback.loop = False
    playback.seek(9)
    assert playback.advance(106.06) == 10


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class _DevTools:
    """The Chrome DevTools protocol over the page's WebSocket: navigate, evaluate, screenshot."""

    def __init__(self, user_data_dir: Path, timeout_s: float = 60.0):
        from websockets.sync.client import connect

        active = user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not active.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=30)
        self.next_id = 0

    def __enter__(self) -> "_DevTools":
        self.ws.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.ws.__exit__(*exc)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def screenshot(self) -> np.ndarray:
        from PIL import Image

        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_web_viewer_serves_and_draws_the_recording_in_a_browser(recorded, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium binary: install Debian's chromium package for the browser test")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    viewer = subprocess.Popen(
        [sys.executable, "-m", "ogi.cli", "replay", str(recorded["path"]), "--web", "--sim", "1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    browser = None
    try:
        _wait_http(url, timeout_s=120)
        # loopback only: the port is not open on the machine's other addresses
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            other = socket.gethostbyname(socket.gethostname())
            if not other.startswith("127."):
                assert probe.connect_ex((other, port)) != 0
        profile = tmp_path / "profile"
        profile.mkdir()
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--use-gl=angle",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=640,480",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with _DevTools(profile) as devtools:
            devtools.call("Page.enable")
            devtools.call("Page.navigate", url=url)
            # a person waits until the model appears; so does the test (software WebGL is slow to start)
            deadline = time.monotonic() + 120
            scene, robot = None, 0.0
            while time.monotonic() < deadline:
                time.sleep(3)
                image = devtools.screenshot()
                # the 3D view between Studio's options and inspector panels, below the horizon
                scene = image[60:260, 215:370]
                robot = (scene.max(axis=2) < 70).mean()  # the dark body and legs against the light floor
                if scene.std() > 15 and len(np.unique(scene.reshape(-1, 3), axis=0)) > 50 and robot > 0.01:
                    break
            assert scene is not None and scene.std() > 15, "the page did not draw the scene"
            assert robot > 0.01, "the page drew no robot"
            title = devtools.call("Runtime.evaluate", expression="document.title")["result"]["value"]
            assert title
            shot = devtools.call("Page.captureScreenshot", format="png")["data"]
            (Path(os.environ.get("OGI_TEST_SHOT_DIR", tmp_path)) / "page.png").write_bytes(base64.b64decode(shot))
    finally:
        if browser is not None:
            browser.terminate()
            browser.wait(timeout=30)
        viewer.terminate()
        try:
            output, _ = viewer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            viewer.kill()
            output, _ = viewer.communicate()
    assert "no authentication" in output and "loopback only" in output
    assert f"open {url}" in " ".join(output.split())


def test_studio_controls_drive_the_playback(recorded):
    """Studio's play/pause, speed, single step, scrubber and reset, as the web page sends them."""
    import mujoco
    from mujoco.studio import messages, sim
    from mujoco.studio.sim_history import SimHistorySnapshot

    from ogi.replay import Recording
    from ogi.replay.video import sim_trajectory
    from ogi.replay.viewer import _playback_plugin, viewer_model

    recording = Recording(recorded["path"])
    qpos, qvel = sim_trajectory(recording, 1)
    playback = Playback(num_frames=len(qpos), frame_dt_s=0.02)
    plugin = _playback_plugin(playback, qpos, qvel)
    sent = []
    plugin.handle = type("Handle", (), {"send_to_viewer": lambda self, message: sent.append(message)})()
    model = viewer_model(recording, 1)
    data = mujoco.MjData(model)

    plugin._on_scrub(SimHistorySnapshot(index=-10))
    assert playback.paused and playback.frame == len(qpos) - 11
    plugin._on_step(messages.StepEvent(model=model, data=data))
    np.testing.assert_array_equal(data.qpos, qpos[len(qpos) - 11])
    history = [m for m in sent if isinstance(m, SimHistorySnapshot)][-1]
    assert history.size == len(qpos) and history.index == -10
    plugin._on_single_step(messages.SingleStepEvent())
    assert playback.frame == len(qpos) - 10
    plugin._on_step_control(messages.StepControlSnapshot(pause_state=sim.PauseState.UNPAUSED, speed=25.0))
    assert not playback.paused and playback.speed_percent == 25.0
    plugin._on_reset(messages.ResetEvent(key=-1))
    assert playback.frame == 0


def test_native_viewer_loop_plays_and_answers_keys(recorded, monkeypatch):
    """run_native against a stand-in for mujoco.viewer's window: frames follow the clock and the keys."""
    import types

    import mujoco
    import mujoco.viewer

    from ogi.replay import Recording
    from ogi.replay import viewer as replay_viewer
    from ogi.replay.video import sim_trajectory

    recording = Recording(recorded["path"])
    qpos, _ = sim_trajectory(recording, 0)
    clock = [0.0]

    def monotonic() -> float:
        clock[0] += 0.02  # one recorded frame per loop at real-time speed
        return clock[0]

    monkeypatch.setattr(replay_viewer, "time", types.SimpleNamespace(monotonic=monotonic, sleep=lambda s: None))
    shown: list[int] = []
    keys = {4: [32], 6: [262], 7: [265, 32]}  # pause; one frame on; double speed and play

    class Window:
        def __init__(self, model, data, key_callback):
            self.model, self.data, self.key_callback = model, data, key_callback
            self.cam = mujoco.MjvCamera()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def is_running(self) -> bool:
            return len(shown) < 10

        def lock(self):
            import contextlib

            return contextlib.nullcontext()

        def sync(self) -> None:
            shown.append(int(np.flatnonzero((qpos == self.data.qpos).all(axis=1))[0]))
            for key in keys.get(len(shown) - 1, []):
                self.key_callback(key)

    monkeypatch.setattr(mujoco.viewer, "launch_passive", lambda m, d, key_callback: Window(m, d, key_callback))
    replay_viewer.run_native(recording, 0)
    assert shown == [0, 1, 2, 3, 4, 4, 4, 5, 7, 9]
