"""`calibrate`: excitation logs in, a calibrated robot out (profile TOML, robot MJCF, report, hashed manifest).

The output directory holds:
- `robot.toml`: the fitted `DynamicsProfile` (`ogi train --dynamics`, `ogi sim-robot --dynamics` read it);
- `robot.xml`: the robot's MJCF with the fitted joint dynamics written in (motor strength and delay are the
  motor's, not the model's: they stay in the TOML);
- `report.json` / `report.md`: fitted values with 95% intervals, start values, held-out trajectory error before
  and after, fit statistics;
- `manifest.json`: the sha256 of each file above and the lineage: every log (path, sha256), the start profile,
  the robot model's hash, the command that made it. `load_calibration` checks every hash.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ogi.calibration.identify import CalibrationError, FitResult, fit
from ogi.checkpoints.format import atomic_write
from ogi.deploy.motorlog import read_motor_log
from ogi.robots import get_robot
from ogi.robots.dynamics import DynamicsProfile, load_profile, nominal_profile

FORMAT = "ogi-calibration"
FORMAT_VERSION = 1
FILES = ("robot.toml", "robot.xml", "report.json", "report.md")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def report_of(result: FitResult, robot_name: str) -> dict[str, Any]:
    return {
        "robot": robot_name,
        "fitted": result.values,
        "interval95": result.intervals,
        "start": {k: result.start.flat().get(k) for k in result.values},
        "held_out_rms_before_rad": result.held_out_rms_before_rad,
        "held_out_rms_after_rad": result.held_out_rms_after_rad,
        "traj_error_reduction": result.traj_error_reduction,
        "fit_windows": result.fit_windows,
        "held_out_windows": result.held_out_windows,
        "cost_start": result.cost_start,
        "cost_end": result.cost_end,
        "iterations": result.iterations,
        "not_fitted": ["speed_knee_rad_s", "max_speed_rad_s", "base_mass_offset_kg"],
    }


def report_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Calibration of {report['robot']}",
        "",
        "| parameter | start | fitted | 95% interval |",
        "|---|---:|---:|---:|",
    ]
    for name, value in report["fitted"].items():
        start = report["start"].get(name)
        lines.append(
            f"| {name} | {'' if start is None else f'{start:.4g}'} | {value:.4g} | ± {report['interval95'][name]:.2g} |"
        )
    lines += [
        "",
        f"Held-out joint angle error (open-loop windows from the measured state, RMS over joints and time): "
        f"{report['held_out_rms_before_rad']:.4g} rad with the start model, {report['held_out_rms_after_rad']:.4g} "
        f"rad calibrated ({100 * report['traj_error_reduction']:.1f}% less), over {report['held_out_windows']} "
        f"windows; fitted on {report['fit_windows']}.",
        "",
        "Not fitted (a hung robot's excitation does not reach them): the torque-speed curve and the base's mass; "
        "the profile keeps the start values.",
        "",
    ]
    return "\n".join(lines)


def calibrate(
    log_paths: Sequence[Path],
    robot_name: str,
    out: Path,
    *,
    held_out: Sequence[Path] = (),
    start_profile: Path | None = None,
    window_s: float = 1.0,
    max_iters: int = 30,
    force: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Fit, then write the calibrated robot to `out`; returns the report."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise CalibrationError(f"{out} exists and is not empty; choose another --out or pass --force")
    robot = get_robot(robot_name)
    start = load_profile(start_profile) if start_profile is not None else nominal_profile(robot)
    logs = [read_motor_log(p) for p in log_paths]
    held = [read_motor_log(p) for p in held_out]
    result = fit(logs, robot, start, held_out_logs=held, window_s=window_s, max_iters=max_iters, verbose=verbose)
    report = report_of(result, robot.name)
    profile = result.profile
    toml = profile.to_toml(
        f"calibrated {robot.name}, fitted by `ogi calibrate` from {len(logs)} log(s); see manifest.json for lineage"
    ).encode()
    spec = robot.build()
    profile.apply_to_spec(spec, robot)
    xml = spec.to_xml().encode()
    contents = {
        "robot.toml": toml,
        "robot.xml": xml,
        "report.json": json.dumps(report, indent=2).encode(),
        "report.md": report_markdown(report).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        atomic_write(out / name, data)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "robot": robot.name,
        "files": {name: _sha(data) for name, data in contents.items()},
        "lineage": {
            "logs": [{"path": str(log.path), "sha256": log.sha256, "truncated": log.truncated} for log in logs],
            "held_out_logs": [{"path": str(log.path), "sha256": log.sha256} for log in held],
            "start_profile": None
            if start_profile is None
            else {"path": str(start_profile), "sha256": _sha(Path(start_profile).read_bytes())},
            "robot_model_sha256": _sha(robot.build().to_xml().encode()),
        },
        "settings": {"window_s": window_s, "max_iters": max_iters},
        "command": sys.argv,
        "created_unix_s": time.time(),
    }
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2).encode())
    return report


def load_calibration(directory: Path) -> tuple[DynamicsProfile, dict[str, Any]]:
    """(profile, manifest) of a calibration directory, after checking every file's hash."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except FileNotFoundError:
        raise CalibrationError(f"{directory}: no manifest.json (not written by `ogi calibrate`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CalibrationError(f"{directory}/manifest.json: corrupt ({err})") from None
    if manifest.get("format") != FORMAT:
        raise CalibrationError(f"{directory}: manifest format {manifest.get('format')!r}, expected {FORMAT!r}")
    for name, digest in manifest.get("files", {}).items():
        path = directory / name
        if not path.exists():
            raise CalibrationError(f"{path}: missing (the manifest names it)")
        if _sha(path.read_bytes()) != digest:
            raise CalibrationError(f"{path}: sha256 differs from the manifest's (edited or corrupt)")
    return load_profile(directory / "robot.toml"), manifest
