import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest


def read_png(path: Path) -> np.ndarray:
    """Decode the unfiltered 8-bit RGB PNGs `write_png` makes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    w, h = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def test_write_png_round_trip(tmp_path):
    from ogi.envs.terrain_preview import write_png

    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_png(tmp_path / "x.png"), image)


def egl_available() -> bool:
    probe = "import mujoco; mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 8, 8).render()"
    env = dict(os.environ, MUJOCO_GL="egl")
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120).returncode == 0


def test_terrain_preview_renders_a_picture(tmp_path):
    if not egl_available():
        pytest.skip("no EGL offscreen context: install libegl1 libegl-mesa0 libgl1-mesa-dri (make does, as root)")
    out = tmp_path / "terrain.png"
    env = dict(os.environ, MUJOCO_GL="egl")
    cmd = [
        sys.executable,
        "-m",
        "ogi.cli",
        "terrain",
        "preview",
        "--out",
        str(out),
        "--kinds",
        "flat,stairs_up",
        "--cell-width",
        "64",
        "--cell-height",
        "48",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    image = read_png(out)
    assert image.shape == (2 * 48, 5 * 64, 3)
    # each cell shows something (not a blank frame), and stairs differ from flat ground
    cells = image.reshape(2, 48, 5, 64, 3)
    assert (cells.std(axis=(1, 3, 4)) > 5).all()
    assert np.abs(cells[0].astype(int) - cells[1].astype(int)).mean() > 2
