"""Cost of the planner's head camera: the ray camera over a whole batch, the OpenGL camera one simulation at a time,
and one 5 Hz camera frame against the ten 50 Hz walking steps between two frames.

The arena holds a few objects and an obstacle in front of each robot; the shipped walker (`go2_walk_omni`) walks
forward in it, so that the walking step is timed with real contacts, on the walker's own physics settings. Every
figure is the median over rounds. The rendered camera needs an offscreen OpenGL context (MUJOCO_GL=egl on a
headless machine); without one its figures are null and `rendered_error` says why. Prints one JSON object.

    MUJOCO_GL=egl python benchmarks/camera.py [--num-envs 64] [--rounds 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import platform
import statistics
import time
from pathlib import Path

import mujoco
import numpy as np
import torch

from ogi.envs.arena import ArenaConfig, ArenaVecEnv
from ogi.envs.camera import CameraConfig
from ogi.envs.layout import Layout, Obstacle, SceneObject
from ogi.rendering import OffscreenGLError
from ogi.training.policy_loading import policy_function

WALKER = Path(__file__).resolve().parents[1] / "ogi/policies/pretrained/go2_walk_omni"
SIZES = ((32, 24), (64, 48))
POLICY_STEPS_PER_FRAME = 10  # 50 Hz walking under a 5 Hz planner

SCENE = Layout(
    objects=(
        SceneObject("red", "box", (2.5, 0.0)),
        SceneObject("blue", "cone", (3.0, 1.0)),
        SceneObject("green", "pillar", (3.5, -1.2)),
        SceneObject("yellow", "ball", (-2.0, 0.5)),
    ),
    obstacles=(Obstacle((2.0, -0.8), (0.3, 0.2), 0.5),),
)


def median_seconds(call, repeats: int, rounds: int) -> float:
    """Median over rounds of the seconds one call takes, each round averaging `repeats` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="simulation threads, 0: all cores")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.num_envs

    walker, trained = policy_function(WALKER, n)
    walk = dataclasses.replace(trained, num_envs=n, sim=dataclasses.replace(trained.sim, nthread=args.threads))
    ray, rendered, rendered_error = {}, {}, None
    env = None
    for width, height in SIZES:
        env = ArenaVecEnv(ArenaConfig(camera=CameraConfig(width=width, height=height)), walk)
        env.set_layouts(np.arange(n), [SCENE] * n)
        key = f"{width}x{height}"
        ray[key] = n / median_seconds(env.camera, 20, args.rounds)
        if rendered_error is None:
            try:
                camera = env.rendered_camera()
            except OffscreenGLError as error:
                rendered_error = str(error)
            else:
                one_image = functools.partial(camera.capture, env.batch, [0])
                rendered[key] = 1.0 / median_seconds(one_image, 20, args.rounds)
                camera.close()

    # the walking step, on the last env (the camera's size does not change the physics)
    env.set_layouts(np.arange(n), [SCENE] * n)
    obs = env.set_commands(np.tile([0.5, 0.0, 0.0], (n, 1)))
    done = np.ones(n, dtype=bool)
    policy_s, step_s = [], []
    for _ in range(args.rounds):
        policy, stepping = 0.0, 0.0
        for _ in range(POLICY_STEPS_PER_FRAME):
            start = time.perf_counter()
            actions = walker(obs, done)
            policy += time.perf_counter() - start
            start = time.perf_counter()
            obs, *_ = env.step(actions)
            stepping += time.perf_counter() - start
            done[:] = False
        policy_s.append(policy / POLICY_STEPS_PER_FRAME)
        step_s.append(stepping / POLICY_STEPS_PER_FRAME)
    step, policy = statistics.median(step_s), statistics.median(policy_s)
    between_frames_s = POLICY_STEPS_PER_FRAME * step
    frame_cost = {f"ray_{key}": (n / rate) / between_frames_s for key, rate in ray.items()} | {
        f"rendered_{key}": (n / rate) / between_frames_s for key, rate in rendered.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "camera",
                "num_envs": n,
                "threads": args.threads,
                "rounds": args.rounds,
                "sim_dt_s": walk.sim.sim_dt_s,
                "ctrl_dt_s": walk.sim.ctrl_dt_s,
                "ray_images_per_s": ray,
                "rendered_images_per_s": rendered or None,
                "rendered_error": rendered_error,
                "walk_step_s": step,
                "walker_policy_s": policy,
                "ray_frame_s": {key: n / rate for key, rate in ray.items()},
                # one camera frame of every simulation over the env time of the 10 walking steps between frames
                "frame_cost_vs_10_walk_steps": frame_cost,
                "mujoco": mujoco.__version__,
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
