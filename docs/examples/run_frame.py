"""One frame of an `ogi run` recording as a PNG: the scene seen from above and behind, the planner's camera image at
the decision before it, the instruction and the decision (stage, command). Reads only the recording.

    ogi run --instruction "go to the red box" --record run.mcap
    MUJOCO_GL=egl python docs/examples/run_frame.py run.mcap --at 0.6 --out frame.png   # 60% of the way through
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ogi.replay.reader import Recording  # noqa: E402
from ogi.replay.video import VideoConfig, render_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--at", type=float, default=0.6, help="where in the run, 0..1")
    parser.add_argument("--out", type=Path, default=Path("frame.png"))
    args = parser.parse_args()
    recording = Recording(args.recording)
    ctrl_dt = float(recording.info["ctrl_dt_s"])
    fps = 10.0  # frames at t = i / fps; the one nearest the asked time is kept
    wanted = int(round(args.at * recording.num_steps * ctrl_dt * fps))
    config = VideoConfig(width=640, height=480, fps=fps, camera="track", distance_m=3.2, elevation_deg=-35.0)
    frame = None
    for index, image in enumerate(render_frames(recording, 0, config)):
        frame = image
        if index == wanted:
            break
    step = int(round(wanted / fps / ctrl_dt))
    decisions = [e for e in recording.events if e["kind"] == "planner" and e["step"] <= step]
    images = [(meta, image) for meta, image in recording.images(sim=0) if meta["step"] <= step]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    axes[0].imshow(frame)
    axes[0].set_title(f"t = {step * ctrl_dt:.1f} s", fontsize=10)
    if images:
        axes[1].imshow(np.asarray(images[-1][1][..., :3]), interpolation="nearest")
    last = decisions[-1]["data"] if decisions else {}
    command = last.get("command", [0, 0, 0])
    axes[1].set_title(
        f"planner camera (32 x 24)\nstage {last.get('stage', 0)}: vx {command[0]:+.1f} vy {command[1]:+.1f} "
        f"yaw {command[2]:+.1f}",
        fontsize=10,
    )
    for axis in axes:
        axis.set_axis_off()
    figure.suptitle(f'"{recording.info.get("instruction", "")}"', fontsize=12)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
