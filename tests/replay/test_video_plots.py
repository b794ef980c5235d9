import os
import subprocess
import sys

import numpy as np
import pytest

from ogi.replay.video import frame_steps
from tests.replay.conftest import SHORT_STEPS


def egl_available() -> bool:
    probe = "import mujoco; mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 8, 8).render()"
    env = dict(os.environ, MUJOCO_GL="egl")
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120).returncode == 0


def test_frame_steps_cover_the_recording_at_the_video_rate():
    # 10 steps of 0.02 s = 0.2 s at 25 fps: frames at 0, 0.04, ..., 0.2 s
    np.testing.assert_array_equal(frame_steps(10, 0.02, 25.0), [0, 2, 4, 6, 8, 10])
    assert frame_steps(1000, 0.02, 30.0)[-1] == 1000 and len(frame_steps(1000, 0.02, 30.0)) == 601


def test_video_has_the_right_frames_and_is_not_blank(short_recording, tmp_path):
    if not egl_available():
        pytest.skip("no EGL offscreen context: install libegl1 libegl-mesa0 libgl1-mesa-dri")
    import imageio_ffmpeg

    out = tmp_path / "sim1.mp4"
    short = short_recording
    cmd = [
        sys.executable,
        "-m",
        "ogi.cli",
        "replay",
        str(short),
        "--sim",
        "1",
        "--video",
        str(out),
        "--width",
        "96",
        "--height",
        "64",
        "--fps",
        "25",
        "--no-shadows",
    ]
    result = subprocess.run(cmd, env=dict(os.environ, MUJOCO_GL="egl"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = len(frame_steps(SHORT_STEPS, 0.02, 25.0))
    assert f"{expected} frames" in " ".join(result.stdout.split())
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (96, 64) and meta["fps"] == 25
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(64, 96, 3) for f in reader])
    assert len(frames) == expected
    assert frames.reshape(len(frames), -1).std(axis=1).min() > 5  # every frame shows a scene, not one colour
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 1  # and the robot moves


def test_plots_are_written_and_show_data(short_recording, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from ogi.cli import app
    from ogi.replay import Recording

    assert any(e["kind"] == "push" and e["sim"] in (2, -1) for e in Recording(short_recording).events)
    result = CliRunner().invoke(app, ["plot", str(short_recording), "--out", str(tmp_path), "--sim", "2"])
    assert result.exit_code == 0, result.output
    for name in ("velocity", "rewards", "torques", "contacts"):
        image = np.asarray(Image.open(tmp_path / f"{name}.png").convert("RGB")).astype(float)
        assert image.shape[0] > 200 and image.shape[1] > 600
        assert image.std() > 10, name
        # something coloured is drawn (lines, bars), not only black text on white
        assert (np.ptp(image, axis=2) > 60).mean() > 0.002, name


def test_plot_of_a_bad_file_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from ogi.cli import app

    bad = tmp_path / "x.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + bytes(100))
    result = CliRunner().invoke(app, ["plot", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
