"""Where the humanoid's right hand can take a top-down grasp: jaws pointing down, closing horizontally.

The jaws close along the hand's x axis and hang along its -z axis. An upright box on a table is grasped from above
with -z pointing down and x horizontal. This samples arm poses uniformly within the four joints' ranges (the robot
standing at its default pose), keeps those with the jaws within `--down-deg` of straight down and their closing
axis within `--level-deg` of horizontal, the grasp point at table height (0.62-0.90 m) and at least 8 cm ahead of
the shoulder, and reports where those poses put the grasp point and which way the jaws close (0 degrees: along
the robot's heading). Prints one JSON object (last on stdout).

`ik` then asks the other way round, of `--boxes` box positions in front of the robot (0.25-0.45 m ahead of the
pelvis, 0.35 m right to 0.1 m left, 0.64-0.90 m high): can the IK put the right hand's grasp point there with its
jaws closing along the box's thin side (`solve_site_ik(..., axis=...)`, from `--starts` starting poses), with the
arm alone and with the waist as a fifth joint, for a box whose thin side lies across the robot's heading (along
a table edge it faces) and for one whose thin side lies along it. Solved: within 1 cm and 5 degrees.

    python benchmarks/grasp_workspace.py [--samples 150000] [--boxes 60] [--starts 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

import mujoco
import numpy as np

from ogi.envs.config import RandomizationConfig, WalkConfig
from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv
from ogi.hierarchy.locomanip import arm_joint_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--down-deg", type=float, default=20.0)
    parser.add_argument("--level-deg", type=float, default=10.0)
    parser.add_argument("--boxes", type=int, default=60, help="box positions for the IK check (0: skip it)")
    parser.add_argument("--starts", type=int, default=12, help="IK starting poses per box (the first: a grasp shape)")
    args = parser.parse_args()
    still = WalkConfig(randomization=RandomizationConfig(enabled=False, initial_joint_offset_rad=0.0))
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=1, walk=still), autoreset=False)
    env.reset(seed=0)
    for _ in range(25):  # settle on its feet
        env.step(np.zeros((1, env.walk.robot.num_joints)))
    model, base = env.walk.model, env.walk.rig.base_pose()[0]
    yaw = 2 * np.arctan2(base[6], base[3])
    to_base = np.array([[np.cos(yaw), np.sin(yaw), 0], [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    joints = [model.joint(j).id for j in arm_joint_names()[4:]]
    qpos_adr, (low, high) = model.jnt_qposadr[joints], model.jnt_range[joints].T
    data = mujoco.MjData(model)
    data.qpos[:] = env.walk.batch.bind("qpos")[0]
    mujoco.mj_kinematics(model, data)
    shoulder = to_base @ (data.xpos[model.body("right_shoulder_pitch").id] - base[:3])
    site, hand = model.site("right_grasp").id, model.body("right_hand").id
    rng = np.random.default_rng(args.seed)
    points, axes = np.zeros((args.samples, 3)), np.zeros((args.samples, 3, 3))
    for i in range(args.samples):
        data.qpos[qpos_adr] = rng.uniform(low, high)
        mujoco.mj_kinematics(model, data)
        points[i] = to_base @ (data.site_xpos[site] - base[:3])
        axes[i] = to_base @ data.xmat[hand].reshape(3, 3)
    closing, up = axes[:, :, 0], axes[:, :, 2]  # hand x (jaws close along it), hand z (the jaws hang along -z)
    height = points[:, 2] + base[2]
    ahead = points[:, 0] - shoulder[0]
    top_down = (np.abs(closing[:, 2]) < np.sin(np.radians(args.level_deg))) & (
        up[:, 2] > np.cos(np.radians(args.down_deg))
    )
    usable = top_down & (ahead >= 0.08) & (height >= 0.62) & (height <= 0.90)
    heading = np.degrees(np.arctan2(closing[usable, 1], closing[usable, 0]))
    across = np.abs((heading + 90.0) % 180.0 - 90.0)  # the closing axis's angle to the heading, 0-90 degrees

    def spread(x: np.ndarray) -> list[float]:
        return [round(float(v), 3) for v in np.percentile(x, [0, 50, 100])] if len(x) else []

    print(
        json.dumps(
            {
                "samples": args.samples,
                "top_down": int(top_down.sum()),
                "top_down_ahead_at_table_height": int(usable.sum()),
                "ahead_of_shoulder_m_min_median_max": spread(ahead[usable]),
                "lateral_m_min_median_max": spread(points[usable, 1]),
                "height_m_min_median_max": spread(height[usable]),
                "closing_axis_to_heading_deg_min_median_max": spread(across),
                "ik": axis_ik(env, args.boxes, args.starts, args.seed) if args.boxes else None,
            }
        )
    )


def axis_ik(env: WholeBodyVecEnv, boxes: int, starts: int, seed: int) -> dict:
    """Of `boxes` box positions ahead, the share the IK solves with the jaws closing along the thin side."""
    from ogi.controllers.ik import solve_site_ik
    from ogi.envs.sensing import yaw_of

    model, qpos = env.walk.model, env.walk.batch.bind("qpos")[0].copy()
    base = env.walk.rig.base_pose()[0]
    yaw = float(yaw_of(base[None, 3:7])[0])
    arm = arm_joint_names()[4:]
    rng = np.random.default_rng(seed)
    ahead, right, height = rng.uniform(0.25, 0.45, boxes), rng.uniform(-0.1, 0.35, boxes), rng.uniform(0.64, 0.9, boxes)
    box_yaw = rng.uniform(-0.3, 0.3, boxes)  # within 17 degrees of square to the robot
    c, s = np.cos(yaw), np.sin(yaw)
    targets = np.column_stack([base[0] + c * ahead + s * right, base[1] + s * ahead - c * right, height])
    grasp_shape = {"waist_yaw_joint": 0.0, arm[0]: -1.0, arm[1]: 0.0, arm[2]: -1.5, arm[3]: -1.0}
    result = {}
    for name, joints in (("arm", arm), ("arm_and_waist", ["waist_yaw_joint", *arm])):
        ids = [model.joint(j).id for j in joints]
        adr, (low, high) = model.jnt_qposadr[ids], model.jnt_range[ids].T
        if "waist_yaw_joint" in joints:  # starting twists of the torso within 1 rad
            low, high = low.copy(), high.copy()
            low[0], high[0] = -1.0, 1.0
        for thin, turn in (("thin_side_across_heading", np.pi / 2), ("thin_side_along_heading", 0.0)):
            solved = 0
            for b, target in enumerate(targets):
                direction = np.array([np.cos(yaw + turn + box_yaw[b]), np.sin(yaw + turn + box_yaw[b]), 0.0])
                for k in range(starts):
                    q = qpos.copy()
                    q[adr] = [grasp_shape[j] for j in joints] if k == 0 else rng.uniform(low, high)
                    r = solve_site_ik(
                        model, q, "right_grasp", target, joints, axis=([1.0, 0.0, 0.0], direction), max_iterations=200
                    )
                    if r.error_m <= 0.01 and r.axis_error_rad <= np.radians(5):
                        solved += 1
                        break
            result[f"{name}_{thin}"] = round(solved / boxes, 3)
    result["boxes"], result["starts"] = boxes, starts
    return result


if __name__ == "__main__":
    main()
