"""Deployment timing: policy inference, PD loop jitter, and state-to-command latency over DDS on loopback.

1. inference: the exported shipped go2 GRU policy on onnxruntime (one thread, process pinned to one core),
   `--steps` single-observation calls after a warm-up, wall time and the thread's CPU time; target p99 < 2 ms.
2. PD jitter, |actual PD period - 1 ms| over every tick: `pd_jitter_*` in the DDS run below (the runtime alone in
   its process, as on a robot computer), `sim_pd_jitter_*` under `ogi deploy --bridge sim` (the simulated robot's
   physics thread shares this process and its interpreter lock).
3. DDS latency: `python -m ogi.deploy sim-robot --bridge dds` in its own process (LowState at 500 Hz) and the
   runtime here with the DDS bridge, the policy walking at 0.5 m/s: for each state tick, the time from its
   publication to the arrival of the first command computed from it (`LowCmd_.sn[0]`), measured by the robot
   side on one monotonic clock.

Prints one JSON object; `--json PATH` also writes it (docs/deploy_latency.json).

    python benchmarks/deploy_latency.py [--seconds 10] [--steps 5000] [--json docs/deploy_latency.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "ogi" / "policies" / "pretrained" / "go2_walk_gru"
DOMAIN_ID = 37


def inference_latency(artifact, steps: int) -> dict:
    from ogi.deploy.artifact import PolicySession

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        session = PolicySession(artifact, threads=1)
        rng = np.random.default_rng(0)
        observations = rng.normal(size=(steps + 200, artifact.obs_size)).astype(np.float32)
        for obs in observations[:200]:
            session.step(obs)
        times = np.empty(steps)
        cpu = np.empty(steps)
        for i, obs in enumerate(observations[200:]):
            start, start_cpu = time.perf_counter(), time.thread_time()
            session.step(obs)
            times[i], cpu[i] = time.perf_counter() - start, time.thread_time() - start_cpu
    finally:
        os.sched_setaffinity(0, affinity)
    ms, cpu_ms = times * 1e3, cpu * 1e3
    # wall time includes being preempted on a shared core; the thread's CPU time is the inference's own cost
    return {
        "inference_p50_ms": float(np.percentile(ms, 50)),
        "inference_p99_ms": float(np.percentile(ms, 99)),
        "inference_max_ms": float(ms.max()),
        "inference_cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "inference_cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
        "inference_steps": steps,
    }


def sim_deploy(artifact_dir: Path, seconds: float) -> dict:
    from ogi.deploy.launch import deploy

    report = deploy(artifact_dir, bridge="sim", seconds=seconds, command_vx=0.5)
    return {
        "sim_pd_jitter_p50_us": report["pd_jitter_p50_us"],
        "sim_pd_jitter_p99_us": report["pd_jitter_p99_us"],
        "sim_pd_ticks": report["pd_ticks"],
        "sim_policy_steps": report["policy_steps"],
        "sim_pd_overruns": report["pd_overruns"],
        "sim_walked_x_m": report["base_displacement_m"][0],
        "sim_slips": report["sim_slips"],
        "sim_events": [e["cause"] for e in report["events"]],
    }


def dds_deploy(artifact, seconds: float) -> dict:
    from ogi.deploy.dds import DdsBridge
    from ogi.deploy.runtime import Runtime, RuntimeConfig

    robot = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ogi.deploy",
            "sim-robot",
            "--bridge",
            "dds",
            "--domain-id",
            str(DOMAIN_ID),
            "--state-hz",
            "500",
            "--seconds",
            str(seconds + 60),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bridge = DdsBridge(artifact.manifest["robot"]["sdk_motor_index"], artifact.num_joints, domain_id=DOMAIN_ID)
    runtime = Runtime(artifact, bridge, RuntimeConfig(command=(0.5, 0.0, 0.0)))
    try:
        deadline = time.monotonic() + 60
        while bridge.latest_state() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        gc.freeze()
        runtime.start()
        time.sleep(seconds)
    finally:
        runtime.stop()
        bridge.close()
        gc.unfreeze()
        robot.send_signal(signal.SIGTERM)
        out, err = robot.communicate(timeout=60)
    if robot.returncode != 0:
        raise RuntimeError(f"sim-robot exited with {robot.returncode}: {err[-2000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    report = runtime.report()
    return {
        "dds_latency_p50_ms": summary["state_to_command_p50_ms"],
        "dds_latency_p99_ms": summary["state_to_command_p99_ms"],
        "dds_latency_samples": summary["state_to_command_samples"],
        "pd_jitter_p50_us": report["pd_jitter_p50_us"],
        "pd_jitter_p99_us": report["pd_jitter_p99_us"],
        "dds_state_rate_hz": report["bridge"]["received"] / seconds,
        "dds_link_runtime_side": report["bridge"],
        "dds_link_robot_side": summary["link"],
        "dds_robot_slips": summary["slips"],
        "dds_walked_x_m": summary["base_displacement_m"][0],
        "dds_events": [e["cause"] for e in report["events"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each deploy run")
    parser.add_argument("--steps", type=int, default=5000, help="inference calls timed")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()

    from ogi.deploy.export import export_policy

    with tempfile.TemporaryDirectory() as tmp:
        artifact = export_policy(PRETRAINED, Path(tmp) / "go2_walk")
        result = {"machine_cores": os.cpu_count(), "load_average_1min_at_start": os.getloadavg()[0]}
        result.update(inference_latency(artifact, args.steps))
        result.update(sim_deploy(artifact.path, args.seconds))
        result.update(dds_deploy(artifact, args.seconds))
        result["load_average_1min_at_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
