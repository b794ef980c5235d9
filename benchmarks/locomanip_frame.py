"""A recorded episode of the `pick_place` scene and one rendered frame of it, for the README.

The shipped humanoid walker walks toward the box on the first table, steered by the hand-off's command (no arm
skill grasps yet); the episode is recorded to MCAP, replayed bit for bit, and its last frame rendered to PNG.
Prints one JSON object (last on stdout): the recording, whether replay was exact, the frame, the distance left.

    MUJOCO_GL=egl python benchmarks/locomanip_frame.py [--seconds 8] [--seed 2] [--out docs/pick_place_frame.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ogi.envs.wholebody import WholeBodyVecEnv
from ogi.hierarchy.locomanip import HandOff, Walker, whole_body_config
from ogi.replay import Recording, VideoConfig, record_whole_body, replay_check
from ogi.replay.video import render_frames
from ogi.training.policy_loading import load_policy

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--walker", type=Path, default=ROOT / "ogi" / "policies" / "pretrained" / "humanoid_walk")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pick_place_frame.png")
    parser.add_argument("--recording", type=Path, default=Path("runs/pick_place.mcap"))
    args = parser.parse_args()
    walker_policy = load_policy(args.walker)
    env = WholeBodyVecEnv(whole_body_config(walker_policy, task="pick_place", num_envs=1, seed=args.seed))
    env.reset(seed=args.seed)
    walker = Walker(walker_policy, env)
    handoff = HandOff(reach_m=0.75)  # stop at the table's edge
    with record_whole_body(env, args.recording, meta={"source": "benchmarks/locomanip_frame.py"}):
        for _ in range(int(args.seconds / env.walk.cfg.sim.ctrl_dt_s)):
            box, _ = env.box_pose()
            command, _ = handoff.command(env, goal=box)
            env.step(walker.act(command))
    recording = Recording(args.recording)
    exact = replay_check(recording).exact
    frames = list(
        render_frames(recording, 0, VideoConfig(width=960, height=540, fps=1.0, distance_m=3.0, azimuth_deg=150.0))
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(args.out, frames[-1])
    box, _ = env.box_pose()
    left = float(np.linalg.norm(box[0, :2] - env.walk.rig.base_pose()[0, :2]))
    result = {"recording": str(args.recording), "replay_exact": exact, "frame": str(args.out), "box_distance_m": left}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
