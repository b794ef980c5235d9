"""The functions behind `ogi train` and `ogi eval`: config assembly, clear errors, summaries."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ogi import checkpoints as ckpt
from ogi.terminal import dumps_strict, print_error
from ogi.validation import ConfigError

_SHORT = 12  # hex digits of a hash shown in a report: enough to tell two digests apart by eye


TERRAIN_SIM_DT_S = 0.002  # physics step a terrain run needs: heightfield contacts at 250 Hz topple walkers


def build_config(
    *,
    robot: str,
    task: str,
    config: Path | None,
    iterations: int | None,
    minutes: float | None,
    num_envs: int | None,
    actor: str | None,
    seed: int | None,
    fall_limit: float | None = None,
    dynamics: Path | None = None,
    adversary: bool = False,
):
    """The run's `TrainConfig`: the preset, the TOML config over it, the options over both. A dynamics profile
    (`dynamics`, or `[env.dynamics] profile` of the config) is recorded with its text and sha256, so that the run's
    config and checkpoints say which robot it trained on."""
    from ogi.envs.config import DynamicsConfig
    from ogi.policies import ActorConfig
    from ogi.training.config import load_train_config, preset

    cfg = preset(robot, task)
    if config is not None:
        cfg = load_train_config(config, cfg)
    changes: dict = {}
    if dynamics is not None:
        changes["env"] = dataclasses.replace(cfg.env, dynamics=DynamicsConfig.from_file(dynamics))
    elif cfg.env.dynamics.profile and not cfg.env.dynamics.toml:
        cfg.env.dynamics.load()  # a sha256 the config pins must match the file
        changes["env"] = dataclasses.replace(cfg.env, dynamics=DynamicsConfig.from_file(cfg.env.dynamics.profile))
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
    if adversary:
        changes["adversary"] = dataclasses.replace(cfg.adversary, enabled=True)
    if actor is not None:
        changes["actor"] = (
            dataclasses.replace(cfg.actor, kind=actor)
            if isinstance(cfg.actor, ActorConfig)
            else ActorConfig(kind=actor)
        )
    return dataclasses.replace(cfg, **changes)


def run_train(
    *,
    robot: str,
    task: str,
    algo: str,
    config: Path | None,
    run_dir: Path | None,
    iterations: int | None,
    minutes: float | None,
    num_envs: int | None,
    actor: str | None,
    seed: int | None,
    resume: bool,
    evaluate_after: bool,
    console: Console,
    fall_limit: float | None = None,
    init_from: Path | None = None,
    until_walks: bool = False,
    dynamics: Path | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    threads_per_worker: int = 1,
    adversary: bool = False,
) -> int:
    """`dynamics`: a `DynamicsProfile` TOML, the calibrated robot to train on (see `WalkVecEnv`); a resumed run
    keeps the profile recorded in its config."""
    from ogi.training.runner import Runner

    try:
        if resume:
            if run_dir is None:
                raise ConfigError("--resume needs --run-dir")
            if dynamics is not None:
                raise ConfigError("--dynamics starts a new run; --resume continues one on the robot it recorded")
            from ogi.training.config import config_from_plain

            cfg = config_from_plain(json.loads((run_dir / "config.json").read_text()))
            if minutes is not None:
                cfg = dataclasses.replace(cfg, max_minutes=minutes)
            if iterations is not None:
                cfg = dataclasses.replace(cfg, iterations=iterations)
        else:
            cfg = build_config(
                robot=robot,
                task=task,
                config=config,
                iterations=iterations,
                minutes=minutes,
                num_envs=num_envs,
                actor=actor,
                seed=seed,
                fall_limit=fall_limit,
                dynamics=dynamics,
                adversary=adversary,
            )
        run_dir = run_dir or Path("runs") / f"{cfg.env.robot.replace('/', '_')}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
        if algo == "sb3-ppo":
            if cfg.adversary.enabled:
                raise ConfigError("the push adversary trains beside OGI's PPO; it does not combine with --algo sb3-ppo")
            from ogi.training.sb3 import train_sb3

            summary = train_sb3(cfg, run_dir, console=console)
            print(dumps_strict(summary, indent=2))
            return 0
        if init_from is not None and resume:
            raise ConfigError("--init-from starts a new run; --resume continues one: pass only one of them")
        if workers is not None:
            if until_walks:
                raise ConfigError("--until-walks judges one process's policy; it does not combine with --workers")
            if cfg.adversary.enabled:
                raise ConfigError("the push adversary trains in one process; it does not combine with --workers")
            return _train_workers(
                cfg, run_dir, console, workers, ray_address, threads_per_worker, resume, init_from, evaluate_after
            )
        if ray_address is not None:
            raise ConfigError("--ray-address places --workers; pass --workers N with it")
        runner = Runner(cfg, run_dir, resume=resume)
        if resume and runner.last_checkpoint is not None:
            console.print(
                f"resumed from checkpoint {runner.last_checkpoint.iteration} (step {runner.last_checkpoint.step})",
                markup=False,
                soft_wrap=True,
            )
        if init_from is not None:
            from ogi.training.warm_start import warm_start

            source = warm_start(runner, init_from)
            console.print(f"actor starts from {source.path}", markup=False, soft_wrap=True)
    except (ConfigError, KeyError, ValueError, FileExistsError, FileNotFoundError, ckpt.CheckpointError) as err:
        return print_error(err)
    console.print(f"run directory: {run_dir}  (tensorboard --logdir {run_dir / 'tb'})", markup=False, soft_wrap=True)
    if cfg.env.dynamics.profile:
        console.print(
            f"robot dynamics: {cfg.env.dynamics.profile} (sha256 {cfg.env.dynamics.sha256[:_SHORT]})",
            markup=False,
            soft_wrap=True,
        )
    warning = terrain_rate_warning(cfg)
    if warning is not None:
        console.print(warning, markup=False, soft_wrap=True)
    judge = None
    if until_walks:
        judge = _walk_judge(cfg, console)
        console.print(
            f"training until the policy walks (judged every minute on the 1 kHz model), at most {cfg.max_minutes:g} min"
            if cfg.max_minutes
            else "training until the policy walks (judged every minute on the 1 kHz model)",
            markup=False,
            soft_wrap=True,
        )
    try:
        remaining = None if not resume else max(0, cfg.iterations - runner.iteration)
        summary = runner.train(iterations=remaining, save_final=not evaluate_after, stop_when=judge)
    except KeyboardInterrupt:
        console.print(
            f"interrupted: saved {runner.last_checkpoint.path if runner.last_checkpoint else 'nothing'}; "
            f"continue with: ogi train --resume --run-dir {run_dir}",
            markup=False,
            soft_wrap=True,
        )
        return 130
    if evaluate_after:
        from ogi.training.evaluate import evaluate

        result = evaluate(
            runner.actor, runner.actor_normalizer, cfg.env, num_envs=16, episode_s=10.0, actor_obs=cfg.actor_obs
        )
        runner.last_eval = result.scores()
        if not runner.saved_now():
            runner.save()
        summary["eval"] = result.as_dict()
    if judge is not None:
        summary["walks"] = judge.walked_at_s is not None
        summary["minutes_to_walk"] = None if judge.walked_at_s is None else judge.walked_at_s / 60
        summary["judgements"] = judge.history
        if judge.walked_at_s is not None:
            console.print(
                f"walks after {judge.walked_at_s / 60:.1f} min of training ({runner.env_steps:,} env steps)",
                markup=False,
                soft_wrap=True,
            )
        else:
            console.print(
                "did not walk yet within the time given; continue with: "
                f"ogi train --resume --run-dir {run_dir} --until-walks",
                markup=False,
                soft_wrap=True,
            )
    summary["checkpoint"] = str(runner.last_checkpoint.path) if runner.last_checkpoint else None
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(console, summary)
    return 0


def _train_workers(
    cfg, run_dir: Path, console: Console, workers, ray_address, threads, resume, init_from, evaluate_after
) -> int:
    """`ogi train --workers`: replicas on Ray (ogi.training.scale); the driver evaluates rank 0's last checkpoint."""
    from ogi.training.scale import ScaleError, train_distributed

    console.print(
        f"run directory: {run_dir}  ({workers} workers x {cfg.env.num_envs // workers} simulations; "
        f"tensorboard --logdir {run_dir / 'tb'})",
        markup=False,
        soft_wrap=True,
    )
    try:
        summary = train_distributed(
            cfg,
            run_dir,
            workers=workers,
            ray_address=ray_address,
            threads=threads,
            resume=resume,
            init_from=init_from,
        )
    except ScaleError as err:
        return print_error(err)
    if evaluate_after and summary.get("checkpoint"):
        from ogi.training.evaluate import evaluate
        from ogi.training.policy_loading import load_policy

        actor, normalizer, _, _ = load_policy(Path(summary["checkpoint"]))
        result = evaluate(actor, normalizer, cfg.env, num_envs=16, episode_s=10.0, actor_obs=cfg.actor_obs)
        summary["eval"] = result.as_dict()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(console, {k: v for k, v in summary.items() if k != "replicas"})
    return 0


def _walk_judge(cfg, console: Console):
    from ogi.training.walk_eval import WalkJudge, describe

    def report(training_s: float, env_steps: int, results, walking: bool) -> None:
        console.print(
            f"{training_s / 60:.1f} min, {env_steps:,} steps: {'walks' if walking else 'not yet walking'}\n"
            f"{describe(results)}",
            markup=False,
            soft_wrap=True,
        )

    return WalkJudge(cfg.env, actor_obs=cfg.actor_obs, on_judged=report)


def run_eval(
    run: Path,
    *,
    num_envs: int,
    seconds: float,
    as_json: bool,
    console: Console,
    record: Path | None = None,
    families: bool = False,
) -> int:
    from ogi.training.evaluate import evaluate
    from ogi.training.policy_loading import load_policy

    try:
        actor, normalizer, cfg, checkpoint = load_policy(run)
    except (FileNotFoundError, ckpt.CheckpointError, ConfigError, KeyError) as err:
        return print_error(err)
    if families:
        return _eval_families(
            actor, normalizer, cfg, checkpoint, num_envs=num_envs, seconds=seconds, as_json=as_json, console=console
        )
    result = evaluate(
        actor, normalizer, cfg.env, num_envs=num_envs, episode_s=seconds, actor_obs=cfg.actor_obs, record=record
    )
    out = {"checkpoint": str(checkpoint.path), "env_steps": checkpoint.step, **result.as_dict()}
    # strict JSON: a metric with nothing to average (e.g. every episode shorter than the settling time) is null
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
    if as_json:
        print(dumps_strict(out, indent=2))
        return 0
    table = Table(title=escape(f"eval: {checkpoint.path}"))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in out.items():
        text = (
            f"{value:.4g}"
            if isinstance(value, float)
            else (", ".join(f"{v:.2f}" for v in value) if isinstance(value, tuple) else str(value))
        )
        table.add_row(key, escape(text))
    console.print(table)
    print(dumps_strict(out))
    return 0


def _eval_families(
    actor, normalizer, cfg, checkpoint, *, num_envs: int, seconds: float, as_json: bool, console: Console
) -> int:
    from ogi.training.walk_eval import FAMILIES, evaluate_families, full_fidelity, summarize, walks

    per_family = max(1, num_envs // len(FAMILIES))
    results = evaluate_families(
        actor,
        normalizer,
        full_fidelity(cfg.env),
        envs_per_family=per_family,
        episode_s=seconds,
        actor_obs=cfg.actor_obs,
    )
    out = {
        "checkpoint": str(checkpoint.path),
        "env_steps": checkpoint.step,
        "physics_hz": 1000,
        "walks": walks(results),
        **summarize(results),
    }
    if as_json:
        print(dumps_strict(out, indent=2))
        return 0
    table = Table(title=escape(f"eval per command family (1 kHz physics): {checkpoint.path}"))
    for column in ("family", "lin error m/s", "yaw error rad/s", "falls", "duty factors"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.lin_error_mps:.3f}",
            f"{r.yaw_error_radps:.3f}",
            f"{r.falls:.2f}",
            ", ".join(f"{d:.2f}" for d in r.duty_factors),
        )
    console.print(table)
    print(
        f"walks: {'yes' if out['walks'] else 'no'} (every family: linear error <= 0.10 m/s, yaw-rate error <= "
        "0.15 rad/s, falls <= 2%, duty factors in [0.35, 0.65])"
    )
    return 0


def run_verify(path: Path) -> int:
    """``ogi verify PATH``: print one line per checkpoint (and, for one checkpoint, its chain); the exit code is
    0 if all verify and 1 otherwise."""
    report = ckpt.verify_path(path)
    if not report.results:
        print(f"INVALID {path}: the run has no checkpoints")
        return 1
    for result in report.results:
        if result.lineage is None:
            print(f"INVALID {result.target}\n    {type(result.error).__name__}: {result.error}")
            continue
        chain, pruned = result.lineage.checkpoints, result.lineage.pruned_parent
        end = (
            f"{chain[-1].path}, whose parent {pruned.checkpoint_sha256[:_SHORT]} at {pruned.path} was pruned"
            if pruned is not None
            else f"{chain[-1].path}"
        )
        print(f"ok      {result.target}  ({len(chain)} checkpoint(s) back to {end})")
        for checkpoint in () if report.is_run else chain:
            print(f"    {_describe(checkpoint)}")
        if pruned is not None and not report.is_run:
            print(
                f"    step {pruned.step:>11,}  iteration {pruned.iteration:>6}  "
                f"sha256 {pruned.checkpoint_sha256[:_SHORT]}  pruned (files deleted by retention)"
            )
    return 0 if report.ok else 1


def _print_summary(console: Console, summary: dict) -> None:
    table = Table(title="training summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    flat = dict(summary)
    flat.update({f"eval/{k}": v for k, v in summary.get("eval", {}).items()})
    flat.pop("eval", None)
    judged = flat.pop("judgements", None)  # one line per judgement was printed as it came; summary.json keeps them
    if judged:
        flat["judgements"] = len(judged)
    for key, value in flat.items():
        text = (
            f"{value:.4g}"
            if isinstance(value, float)
            else (", ".join(f"{v:.2f}" for v in value) if isinstance(value, (tuple, list)) else str(value))
        )
        table.add_row(key, escape(text))
    console.print(table)


def _describe(checkpoint: ckpt.Checkpoint) -> str:
    parent = (checkpoint.parent_sha256 or "-")[:_SHORT]
    scores = " ".join(f"{name}={score:.4g}" for name, score in sorted(checkpoint.eval_scores.items()))
    return (
        f"step {checkpoint.step:>11,}  iteration {checkpoint.iteration:>6}  "
        f"sha256 {checkpoint.checkpoint_sha256[:_SHORT]}  parent {parent:<{_SHORT}}  "
        f"weights {checkpoint.manifest['weights_bytes']:,} B  eval {scores or '-'}"
    )


def terrain_rate_warning(cfg) -> str | None:
    """A note for a terrain run whose physics is slower than 500 Hz, or None."""
    if not cfg.env.terrain.enabled or cfg.env.sim.sim_dt_s <= TERRAIN_SIM_DT_S + 1e-12:
        return None
    return (
        f"note: terrain at {1 / cfg.env.sim.sim_dt_s:.0f} Hz physics; the feet's contacts with the heightfield need "
        f"{1 / TERRAIN_SIM_DT_S:.0f} Hz (at 250 Hz the flat walker fell in 5 of 32 episodes on flat tiles, none at "
        f"500 Hz): set [env.sim] sim_dt_s = {TERRAIN_SIM_DT_S}"
    )
