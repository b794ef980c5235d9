"""The functions behind `ogi train` and `ogi eval`: config assembly, clear errors, summaries."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ogi.training import checkpoint as ckpt
from ogi.validation import ConfigError


def build_config(
    *, robot: str, task: str, config: Path | None, iterations: int | None, minutes: float | None,
    num_envs: int | None, actor: str | None, seed: int | None, fall_limit: float | None = None,
):
    from ogi.policies import ActorConfig
    from ogi.training.config import load_train_config, preset

    cfg = preset(robot, task)
    if config is not None:
        cfg = load_train_config(config, cfg)
    changes: dict = {}
    if iterations is not None:
        changes["iterations"] = iterations
    if minutes is not None:
        changes["max_minutes"] = minutes
        if iterations is None:
            changes["iterations"] = 10**9  # the clock decides
    if seed is not None:
        changes["seed"] = seed
        changes["env"] = dataclasses.replace(changes.get("env", cfg.env), seed=seed)
    if num_envs is not None:
        changes["env"] = dataclasses.replace(changes.get("env", cfg.env), num_envs=num_envs)
    if fall_limit is not None:
        # Pr(fall | pi) <= delta through PPO-Lagrangian
        changes["safety"] = dataclasses.replace(cfg.safety, enabled=True, fall_limit=fall_limit)
    if actor is not None:
        changes["actor"] = dataclasses.replace(cfg.actor, kind=actor) if isinstance(cfg.actor, ActorConfig) else ActorConfig(kind=actor)
    return dataclasses.replace(cfg, **changes)


def run_train(
    *, robot: str, task: str, algo: str, config: Path | None, run_dir: Path | None, iterations: int | None,
    minutes: float | None, num_envs: int | None, actor: str | None, seed: int | None, resume: bool,
    evaluate_after: bool, console: Console, fall_limit: float | None = None, init_from: Path | None = None,
) -> int:
    from ogi.training.runner import Runner

    try:
        if resume:
            if run_dir is None:
                raise ConfigError("--resume needs --run-dir")
            from ogi.training.config import config_from_plain

            cfg = config_from_plain(json.loads((run_dir / "config.json").read_text()))
            if minutes is not None:
                cfg = dataclasses.replace(cfg, max_minutes=minutes)
            if iterations is not None:
                cfg = dataclasses.replace(cfg, iterations=iterations)
        else:
            cfg = build_config(robot=robot, task=task, config=config, iterations=iterations, minutes=minutes,
                               num_envs=num_envs, actor=actor, seed=seed, fall_limit=fall_limit)
        run_dir = run_dir or Path("runs") / f"{cfg.env.robot.replace('/', '_')}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
        if algo == "sb3-ppo":
            from ogi.training.sb3 import train_sb3

            summary = train_sb3(cfg, run_dir, console=console)
            console.print_json(json.dumps(summary))
            return 0
        if init_from is not None and resume:
            raise ConfigError("--init-from starts a new run; --resume continues one: pass only one of them")
        runner = Runner(cfg, run_dir, resume=resume)
        if init_from is not None:
            from ogi.training.warm_start import warm_start

            source = warm_start(runner, init_from)
            console.print(f"actor starts from {source.path}")
    except (ConfigError, KeyError, ValueError, FileExistsError, FileNotFoundError, ckpt.CheckpointError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    console.print(f"run directory: {run_dir}  (tensorboard --logdir {run_dir / 'tb'})")
    try:
        remaining = None if not resume else max(0, cfg.iterations - runner.iteration)
        summary = runner.train(iterations=remaining, save_final=not evaluate_after)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: saved {runner.last_checkpoint.path if runner.last_checkpoint else 'nothing'}; "
                      f"continue with: ogi train --resume --run-dir {run_dir}")
        return 130
    if evaluate_after:
        from ogi.training.evaluate import evaluate

        result = evaluate(
            runner.actor, runner.actor_normalizer, cfg.env, num_envs=16, episode_s=10.0, actor_obs=cfg.actor_obs
        )
        runner.last_eval = result.scores()
        if runner.last_checkpoint is None or runner.last_checkpoint.iteration != runner.iteration:
            runner.save()
        summary["eval"] = result.as_dict()
    summary["checkpoint"] = str(runner.last_checkpoint.path) if runner.last_checkpoint else None
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(console, summary)
    return 0


def load_policy(path: Path):
    """(actor, normalizer, train config, checkpoint) from a run directory (newest valid) or a checkpoint."""
    from ogi.policies import EmpiricalNormalizer, make_actor
    from ogi.training.config import config_from_plain
    from ogi.envs import WalkVecEnv  # noqa: F401  (sizes come from the env's layouts)
    from ogi.envs.observations import policy_layout, privileged_layout
    from ogi.training.config import actor_observation_size

    path = Path(path)
    target = path
    if not (path / ckpt.MANIFEST_FILENAME).exists():
        latest = ckpt.latest_valid_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"{path}: no valid checkpoint (a run directory or a checkpoint directory)")
        target = latest.path
    loaded = ckpt.load_checkpoint(target)
    cfg = config_from_plain(loaded.checkpoint.config)
    from ogi.robots import get_robot

    robot = get_robot(cfg.env.robot)
    depth = cfg.env.depth_camera.pixels if cfg.env.depth_camera.enabled else 0
    scan = len(cfg.env.height_scan.offsets()) if cfg.env.height_scan.enabled else 0
    obs_dim = actor_observation_size(
        policy_layout(robot.num_joints, depth_pixels=depth).size,
        privileged_layout(len(robot.foot_sites), scan_points=scan).size,
        cfg.actor_obs,
    )
    actor = make_actor(obs_dim, robot.num_joints, cfg.actor)
    actor.load_state_dict({k.removeprefix("actor/"): v for k, v in loaded.weights.items() if k.startswith("actor/")})
    normalizer = EmpiricalNormalizer(obs_dim)
    normalizer.load_state_dict(
        {k.removeprefix("actor_normalizer/"): v for k, v in loaded.weights.items() if k.startswith("actor_normalizer/")}
    )
    actor.eval()
    return actor, normalizer, cfg, loaded.checkpoint


def run_eval(run: Path, *, num_envs: int, seconds: float, as_json: bool, console: Console, record: Path | None = None) -> int:
    from ogi.training.evaluate import evaluate

    try:
        actor, normalizer, cfg, checkpoint = load_policy(run)
    except (FileNotFoundError, ckpt.CheckpointError, ConfigError, KeyError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    result = evaluate(actor, normalizer, cfg.env, num_envs=num_envs, episode_s=seconds, actor_obs=cfg.actor_obs,
                      record=record)
    out = {"checkpoint": str(checkpoint.path), "env_steps": checkpoint.step, **result.as_dict()}
    # strict JSON: a metric with nothing to average (e.g. every episode shorter than the settling time) is null
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
    if as_json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    table = Table(title=f"eval: {checkpoint.path}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in out.items():
        text = f"{value:.4g}" if isinstance(value, float) else (
            ", ".join(f"{v:.2f}" for v in value) if isinstance(value, tuple) else str(value))
        table.add_row(key, text)
    console.print(table)
    print(json.dumps(out, allow_nan=False))
    return 0


def _print_summary(console: Console, summary: dict) -> None:
    table = Table(title="training summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    flat = dict(summary)
    flat.update({f"eval/{k}": v for k, v in summary.get("eval", {}).items()})
    flat.pop("eval", None)
    for key, value in flat.items():
        text = f"{value:.4g}" if isinstance(value, float) else (
            ", ".join(f"{v:.2f}" for v in value) if isinstance(value, (tuple, list)) else str(value))
        table.add_row(key, text)
    console.print(table)


def policy_function(run: Path, num_envs: int):
    """A deterministic actor from a run, as a rollout policy function, and the env config it trained on."""
    import numpy as np
    import torch

    from ogi.training.config import actor_observation

    actor, normalizer, cfg, _ = load_policy(run)
    state = [actor.initial_state(num_envs)]

    @torch.no_grad()
    def act(obs: dict, done: np.ndarray) -> np.ndarray:
        state[0] = actor.reset_state(state[0], torch.as_tensor(done))
        mean, state[0] = actor(normalizer(torch.as_tensor(actor_observation(obs, cfg.actor_obs))), state[0])
        return mean.numpy()

    return act, cfg.env
