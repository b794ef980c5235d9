"""A depth student on the robot side: inference time with its depth encoder, and held-out courses on the sim bridge.

1. inference: the exported student (CNN over the depth image + GRU, in one ONNX graph) on onnxruntime, one
   thread, the process pinned to one core; each call times the whole policy step the runtime makes: the depth
   image from the newest `DepthFrame`, the observation, the graph; `--steps` calls after a warm-up. Target:
   p99 < 2 ms. Without `--student` a freshly initialized student of go2's teacher preset is timed (the cost does
   not depend on the weights).
2. courses (with `--student`): the deployment runtime walks the student on the 1 kHz simulated robot standing on
   a terrain course built from a seed training never used (`--course-seed`), reading the depth images the robot's
   camera takes there (`ogi deploy --bridge sim --terrain KIND`): per kind and difficulty, whether it fell, how
   far it got, the ground height it reached. `--blind` walks a blind student on the same courses for comparison.

Prints one JSON object (last on stdout; also written to --json).

    python benchmarks/depth_deploy.py [--student RUN] [--blind RUN] [--kinds stairs_up] [--difficulties 0.3 0.6]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def fresh_student(out: Path) -> Path:
    """A depth student of go2's teacher preset with initial weights, saved by the trainer (for timing only)."""
    from ogi.envs.sensing import HeightScanConfig
    from ogi.training.config import preset
    from ogi.training.distill import student_config
    from ogi.training.runner import Runner

    teacher = preset("go2", "walk")
    teacher = dataclasses.replace(
        teacher,
        actor_obs="privileged",
        env=dataclasses.replace(teacher.env, height_scan=HeightScanConfig(enabled=True, spacing_m=0.2)),
    )
    Runner(student_config(teacher, depth=True, num_envs=2), out).save()
    return out


def inference_latency(artifact, steps: int) -> dict:
    from ogi.deploy.artifact import PolicySession
    from ogi.deploy.bridge import DepthFrame
    from ogi.envs import observations as obs_def
    from ogi.envs.config import NoiseConfig

    cam = artifact.manifest["observation"]["depth_camera"]
    pixels = cam["width"] * cam["height"]
    n = artifact.num_joints
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    rng = np.random.default_rng(0)
    noise = NoiseConfig(enabled=False)
    try:
        session = PolicySession(artifact, threads=1)
        times = np.empty(steps)
        for i in range(steps + 200):
            frame = DepthFrame(i, i, 0.0, cam["width"], cam["height"], cam["max_range_m"], rng.uniform(0, 2, pixels))
            start = time.perf_counter()
            obs = obs_def.policy_observation(
                np.zeros((1, 3)),
                np.array([[0.0, 0.0, -1.0]]),
                np.array([[0.5, 0.0, 0.0]]),
                np.zeros((1, n)),
                np.zeros((1, n)),
                np.zeros((1, n)),
                noise,
                rng,
                depth=frame.observation()[None],
            )[0]
            session.step(obs)
            if i >= 200:
                times[i - 200] = time.perf_counter() - start
    finally:
        os.sched_setaffinity(0, affinity)
    ms = times * 1e3
    return {
        "inference_p50_ms": float(np.percentile(ms, 50)),
        "inference_p99_ms": float(np.percentile(ms, 99)),
        "inference_max_ms": float(ms.max()),
        "steps": steps,
        "depth_pixels": pixels,
        "onnx_bytes": len(artifact.onnx_bytes),
    }


def courses(artifact, kinds, difficulties, seconds: float, command: tuple[float, float, float], seed: int) -> list:
    from ogi.deploy.sim2sim import walk_command

    results = []
    for kind in kinds:
        for difficulty in difficulties:
            r = walk_command(
                artifact,
                command,
                seconds=seconds,
                terrain=kind,
                terrain_difficulty=difficulty,
                terrain_seed=seed,
            )
            results.append(
                {
                    "kind": kind,
                    "difficulty": difficulty,
                    "fell": r["fell"],
                    "distance_m": r["distance_m"],
                    "ground_reached_m": r["ground_reached_m"],
                    "tracking_error_mps": r["tracking_error_mps"],
                    "safety_events": r["safety_events"],
                    "depth_frames_used": r["depth_frames_used"],
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, default=None, help="a depth student run (ogi distill)")
    parser.add_argument("--blind", type=Path, default=None, help="a blind student run, walked on the same courses")
    parser.add_argument("--steps", type=int, default=5000, help="inference calls timed")
    parser.add_argument("--kinds", nargs="*", default=["stairs_up", "stairs_down"])
    parser.add_argument("--difficulties", type=float, nargs="*", default=[0.3, 0.6, 0.9])
    parser.add_argument("--seconds", type=float, default=12.0, help="walking time on each course")
    parser.add_argument("--command-vx", type=float, default=0.5)
    parser.add_argument("--course-seed", type=int, default=7, help="terrain seed of the courses (training: 0)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from ogi.deploy.export import export_policy

    with tempfile.TemporaryDirectory() as tmp:
        run = args.student if args.student is not None else fresh_student(Path(tmp) / "student")
        artifact = export_policy(run, Path(tmp) / "artifact")
        result = {"student": str(args.student) if args.student else "initial weights (timing only)"}
        result.update(inference_latency(artifact, args.steps))
        command = (args.command_vx, 0.0, 0.0)
        if args.student is not None:
            result["courses"] = courses(
                artifact, args.kinds, args.difficulties, args.seconds, command, args.course_seed
            )
            result["falls"] = sum(c["fell"] for c in result["courses"])
        if args.blind is not None:
            blind = export_policy(args.blind, Path(tmp) / "blind")
            result["blind_courses"] = courses(
                blind, args.kinds, args.difficulties, args.seconds, command, args.course_seed
            )
            result["blind_falls"] = sum(c["fell"] for c in result["blind_courses"])
    result["setup"] = {"course_seed": args.course_seed, "command": list(command), "seconds": args.seconds}
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
