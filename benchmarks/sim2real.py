"""Closing the sim-to-real gap from logs, on a simulated robot that differs from its model (the stand-in for hardware).

The hidden robot: a dynamics profile (default `HIDDEN`, or `--hidden TOML`) that makes the 1 kHz simulated go2's
joints stiffer and stickier, its motors weaker and late, its base heavier, with a torque-speed curve, plus encoder
noise on what it publishes. Nothing on the controller's side reads it. Then, as a user would with a real robot:

1. logs: `ogi excite` on the hung robot, twice (two seeds): one log to fit on, one held out;
2. calibration: `ogi calibrate` (mujoco.sysid) -> parameter errors against the hidden profile, the held-out
   trajectory error before and after;
3. residuals: `ogi train-residual` from the fitting log, once against the nominal model (for the shipped policy)
   and once against the calibrated one (for the fine-tuned policy);
4. fine-tuning: `ogi train --init-from` the shipped omnidirectional walker `--dynamics` the calibrated robot for
   `--finetune-minutes` (the one step here that trains);
5. walking: the deployment runtime on the stepped 1 kHz robot (`ogi.deploy.sim2sim.walk_command`), the five
   command families for `--walk-s` each: the shipped policy on the nominal robot (nominal_sim), and on the hidden
   robot (a) as shipped, (b) fine-tuned on the calibration, (c) (a) + residual, (d) (b) + residual;
6. the 1 kHz loop: the residual's compute time per tick (p99 over every tick of the walks) and the PD loop's
   period jitter in real time (`ogi deploy --bridge sim`, `--jitter-s`) with and without it.

Prints one JSON object (last on stdout; also written to OUT/sim2real.json).

    python benchmarks/sim2real.py [--out runs/sim2real] [--finetune-minutes 8] [--finetune-run RUN]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parents[1] / "ogi" / "policies" / "pretrained" / "go2_walk_omni"
SHIPPED_ARCH = "[actor]\nhidden_sizes = [256, 128]\n\n[critic]\nhidden_sizes = [256, 128]\n"  # as it was trained
HIDDEN = {
    "hip.armature": 0.03,
    "thigh.armature": 0.03,
    "calf.armature": 0.05,
    "hip.damping": 0.5,
    "thigh.damping": 0.5,
    "calf.damping": 0.8,
    "hip.frictionloss": 0.6,
    "thigh.frictionloss": 0.6,
    "calf.frictionloss": 0.8,
    "strength": 0.7,
    "delay_ms": 8.0,
    "speed_knee_rad_s": 15.0,
    "max_speed_rad_s": 30.0,
    "base_mass_offset_kg": 1.5,
}
FITTED = (
    *(f"{c}.{n}" for c in ("hip", "thigh", "calf") for n in ("armature", "damping", "frictionloss")),
    "strength",
    "delay_ms",
)


def record(path: Path, hidden, noise, seed: int, seconds: float) -> Path:
    from ogi.deploy.excite import ExciteConfig, Exciter, run_stepped
    from ogi.deploy.motorlog import MotorLogWriter
    from ogi.deploy.sim2sim import _SteppedBridge
    from ogi.deploy.sim_robot import SimRobot, SimRobotConfig
    from ogi.robots import get_robot

    robot = get_robot("go2")
    sim = SimRobot(robot, SimRobotConfig(start="hung", dynamics=hidden, joint_noise=noise, noise_seed=seed))
    cfg = ExciteConfig(seconds=seconds, seed=seed)
    with MotorLogWriter(path, robot, tick_hz=1000.0, meta={"routine": "excite", "excite": cfg.__dict__}) as log:
        run_stepped(Exciter(robot, _SteppedBridge(sim), cfg, log), sim)
    return path


def walk_arm(artifact, hidden, noise, seconds: float) -> dict:
    from ogi.deploy.sim2sim import robot_commands, walk_command

    runs = [
        walk_command(artifact, c, seconds=seconds, dynamics=hidden, joint_noise=noise) for c in robot_commands("go2")
    ]
    p99 = [r["residual_p99_ms"] for r in runs if r["residual_p99_ms"] is not None]
    return {
        "tracking_error_mps": float(np.mean([r["tracking_error_mps"] for r in runs])),
        "yaw_error_radps": float(np.mean([r["yaw_error_radps"] for r in runs])),
        "falls": int(sum(r["fell"] for r in runs)),
        "seconds_walked": float(sum(r["seconds_walked"] for r in runs)),
        "distance_m": float(sum(r["distance_m"] for r in runs)),
        "per_command": [
            {k: r[k] for k in ("command", "tracking_error_mps", "fell", "distance_m", "residual_mean_abs_nm")}
            for r in runs
        ],
        "residual_p99_ms": max(p99) if p99 else None,
    }


def jitter(artifact_dir: Path, seconds: float) -> dict:
    from ogi.deploy.launch import deploy

    report = deploy(artifact_dir, bridge="sim", seconds=seconds, command_vx=0.4)
    return {k: report[k] for k in ("pd_jitter_p50_us", "pd_jitter_p99_us", "pd_overruns", "residual_p99_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sim2real"))
    parser.add_argument("--hidden", type=Path, default=None, help="the hidden robot's profile TOML (default HIDDEN)")
    parser.add_argument("--noise-q", type=float, default=0.0005, help="encoder noise std on joint angles, rad")
    parser.add_argument("--noise-dq", type=float, default=0.02, help="noise std on joint velocities, rad/s")
    parser.add_argument("--excite-s", type=float, default=20.0)
    parser.add_argument("--finetune-minutes", type=float, default=8.0)
    parser.add_argument("--finetune-run", type=Path, default=None, help="use this fine-tuned run instead of training")
    parser.add_argument("--walk-s", type=float, default=10.0)
    parser.add_argument("--jitter-s", type=float, default=5.0)
    parser.add_argument("--residual-steps", type=int, default=3000)
    args = parser.parse_args()

    from ogi.calibration.calibrate import calibrate, load_calibration
    from ogi.calibration.residual import train_residual
    from ogi.deploy.export import export_policy
    from ogi.robots import get_robot
    from ogi.robots.dynamics import load_profile, nominal_profile

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    robot = get_robot("go2")
    hidden = load_profile(args.hidden) if args.hidden else nominal_profile(robot).with_values(**HIDDEN)
    (out / "hidden.toml").write_text(hidden.to_toml("the hidden robot of benchmarks/sim2real.py"))
    noise = (args.noise_q, args.noise_dq)
    timings = {}
    result: dict = {"hidden": {k: v for k, v in hidden.flat().items() if np.isfinite(v)}, "joint_noise": noise}

    started = time.monotonic()
    fit_log = record(out / "excite_fit.mcap", hidden, noise, 0, args.excite_s)
    held_log = record(out / "excite_held_out.mcap", hidden, noise, 1, args.excite_s)
    timings["excite_s"] = time.monotonic() - started

    started = time.monotonic()
    report = calibrate([fit_log], "go2", out / "calibration", held_out=[held_log], force=True)
    timings["calibrate_s"] = time.monotonic() - started
    calibrated, _ = load_calibration(out / "calibration")
    truth = hidden.flat()
    result["param_rel_error"] = {
        k: abs(report["fitted"][k] - truth[k]) / abs(truth[k]) for k in FITTED if k != "delay_ms"
    }
    result["param_fitted"] = report["fitted"]
    result["param_interval95"] = report["interval95"]
    result["delay_error_ms"] = abs(report["fitted"]["delay_ms"] - truth["delay_ms"])
    result["traj_error_reduction"] = report["traj_error_reduction"]
    result["held_out_rms_rad"] = {
        "before": report["held_out_rms_before_rad"],
        "after": report["held_out_rms_after_rad"],
    }
    print(
        json.dumps({"calibration": result["param_rel_error"], "delay_error_ms": result["delay_error_ms"]}), flush=True
    )

    started = time.monotonic()
    residuals = {}
    for name, reference in (("nominal", None), ("calibrated", calibrated)):
        checkpoint, scores = train_residual(
            [fit_log],
            "go2",
            out / f"residual_{name}",
            held_out=[held_log],
            reference=reference,
            reference_source={"benchmark": name},
            steps=args.residual_steps,
        )
        residuals[name] = checkpoint.path
        result.setdefault("residual_held_out_r2", {})[name] = scores["held_out_r2"]
    timings["residuals_s"] = time.monotonic() - started

    finetune = args.finetune_run
    if finetune is None:
        finetune = out / "finetune"
        (out / "shipped_arch.toml").write_text(SHIPPED_ARCH)
        command = [
            sys.executable,
            "-m",
            "ogi.cli",
            "train",
            "--init-from",
            str(SHIPPED),
            "--config",
            str(out / "shipped_arch.toml"),
            "--dynamics",
            str(out / "calibration" / "robot.toml"),
            "--minutes",
            str(args.finetune_minutes),
            "--run-dir",
            str(finetune),
            "--seed",
            "0",
        ]
        started = time.monotonic()
        with open(out / "finetune.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        timings["finetune_s"] = time.monotonic() - started
        result["finetune_command"] = " ".join(command[2:])

    result["finetune_run"] = str(finetune)
    artifacts = {
        "nominal": export_policy(SHIPPED, out / "artifacts" / "nominal"),
        "calibrated": export_policy(finetune, out / "artifacts" / "calibrated"),
        "residual": export_policy(SHIPPED, out / "artifacts" / "residual", residual=residuals["nominal"]),
        "calibrated_residual": export_policy(
            finetune, out / "artifacts" / "calibrated_residual", residual=residuals["calibrated"]
        ),
    }
    started = time.monotonic()
    arms = {"nominal_sim": walk_arm(artifacts["nominal"], None, noise, args.walk_s)}
    arms["mismatch_nominal"] = walk_arm(artifacts["nominal"], hidden, noise, args.walk_s)
    for name in ("calibrated", "residual", "calibrated_residual"):
        arms[name] = walk_arm(artifacts[name], hidden, noise, args.walk_s)
        print(json.dumps({name: arms[name]["tracking_error_mps"], "falls": arms[name]["falls"]}), flush=True)
    timings["walk_s"] = time.monotonic() - started
    result["tracking_error_mps"] = {k: v["tracking_error_mps"] for k, v in arms.items()}
    result["falls"] = {k: v["falls"] for k, v in arms.items()}
    result["distance_m"] = {k: v["distance_m"] for k, v in arms.items()}
    result["tracking_over_nominal_sim"] = {
        k: v["tracking_error_mps"] / arms["nominal_sim"]["tracking_error_mps"] for k, v in arms.items()
    }
    result["arms"] = arms
    result["residual_p99_ms"] = max(arms[k]["residual_p99_ms"] for k in ("residual", "calibrated_residual"))
    result["loop_realtime"] = {
        "without_residual": jitter(out / "artifacts" / "nominal", args.jitter_s),
        "with_residual": jitter(out / "artifacts" / "residual", args.jitter_s),
    }
    best = min(result["tracking_over_nominal_sim"][k] for k in ("calibrated", "residual", "calibrated_residual"))
    result["bars"] = {
        "params_within_10pct": all(v <= 0.10 for v in result["param_rel_error"].values()),
        "delay_within_1ms": result["delay_error_ms"] <= 1.0,
        "traj_error_cut_50pct": result["traj_error_reduction"] >= 0.5,
        "tracking_within_1_2x": best <= 1.2,
        "residual_p99_le_0_2ms": result["residual_p99_ms"] <= 0.2,
    }
    result["timings_s"] = timings
    text = json.dumps(result, indent=2)
    (out / "sim2real.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
