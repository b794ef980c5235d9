"""Loco-manipulation on the humanoid, per whole-body task: how often each way of joining walking and the arms succeeds.

For each task it builds and trains, from scratch except for the walker:
  1. demonstrations from the scripted expert (the hand-off with the IK arm) on the manipulation-only version of
     the task (`reach`: the target already in reach; `push`: the robot behind the crate, facing it, the goal
     ahead beyond it), and a flow-matching arm policy on them (`flow`);
  2. a bounded PPO residual on top of the flow arm, on the same episodes (`flow_residual`);
  3. the coordinator, PPO on the whole task with the walker and the arm (flow + residual) frozen (`full`);
  4. the same skills joined by the scripted hand-off instead: walk until in reach, then reach (`no_coordination`);
  5. one flat PPO policy on all 23 joints, given the minutes of 1-3 together (`flat_ppo`).
`flow` and `flow_residual` are judged on the manipulation-only task (they are arm skills: nothing walks them to
the target; in `push` the hand-off walks the crate on once the hands are on it), the rest on the whole task;
the scripted expert is judged on both (`expert_manipulation`, `expert`). Held-out episodes: their own seeds, never
used in training.

Prints one JSON object (last on stdout):
  tasks -> task -> success {flow, flow_residual, full, no_coordination, flat_ppo, expert, expert_manipulation},
  falls {...}, episodes, train_minutes {...}; walk -> robot -> lin_error_mps, falls (from the learn_walk results
  in docs/ when they are there); not_measured -> task -> why.

    python benchmarks/locomanip.py --walker ogi/policies/pretrained/humanoid_walk [--episodes 128]
        [--tasks reach,push] [--out runs/locomanip]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ogi.envs.wholebody import TASK_OBS_SIZE, WholeBodyVecEnv
from ogi.hierarchy.locomanip import (
    ARM_ACTION_SIZE,
    ARM_OBS_SIZE,
    COORDINATOR_ACTION_SIZE,
    COORDINATOR_OBS_SIZE,
    RESIDUAL_OBS_SIZE,
    FlowArm,
    IKArm,
    ResidualArm,
    Walker,
    WholeBodyController,
    run_episodes,
    whole_body_config,
)
from ogi.hierarchy.locomanip_training import (
    LoopConfig,
    collect_arm_demos,
    mean_function,
    ppo_loop,
    save_mlp_policy,
)
from ogi.policies.flow import FlowConfig, FlowTrainConfig, save_flow_policy, train_flow_policy
from ogi.training.policy_loading import load_policy

ROOT = Path(__file__).resolve().parent.parent
# the manipulation-only version of each task: the robot starts where the hand-off would engage the arm
MANIPULATION_ONLY = {
    "reach": dict(target_distance_m=(0.25, 0.45), target_bearing_rad=(-0.45, 0.45), episode_s=3.0),
    # behind the crate, facing it, the goal ahead beyond it
    "push": dict(
        push_box_distance_m=(0.75, 0.9),
        push_box_bearing_rad=(-0.2, 0.2),
        goal_bearing_rad=(-0.3, 0.3),
        goal_distance_m=(0.8, 1.2),
        episode_s=10.0,
    ),
}
NOT_BUILT = {
    "pick_place": "no scripted expert yet for grasping, carrying and setting down the box: no demonstrations",
}
# env steps of the expert for the flow arm's demonstrations: a push takes 10 s (500 steps) where a reach takes 0.2
DEMO_STEPS = {"reach": 400, "push": 1500}
# the scripted arm per task: the nearer hand on the target; both hands on the crate, 25 cm apart
ARMS = {"reach": {}, "push": {"both_hands_apart_m": 0.25}}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--walker", type=Path, required=True, help="the humanoid walking policy (run or checkpoint)")
    parser.add_argument(
        "--episodes", type=int, default=128, help="held-out episodes per variant (a multiple of --envs)"
    )
    parser.add_argument("--envs", type=int, default=32, help="simulations stepped together")
    parser.add_argument(
        "--demo-steps",
        type=int,
        default=None,
        help=f"env steps of the expert for demonstrations (default per task: {DEMO_STEPS})",
    )
    parser.add_argument("--flow-steps", type=int, default=3000, help="gradient steps of the flow policy")
    parser.add_argument("--residual-minutes", type=float, default=5.0)
    parser.add_argument("--coordination-minutes", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/locomanip"), help="where the trained policies go")
    parser.add_argument(
        "--tasks", default="reach,push", help=f"comma-separated, of {', '.join(MANIPULATION_ONLY)} (built so far)"
    )
    args = parser.parse_args()
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in MANIPULATION_ONLY]
    if unknown or not names:
        parser.error(f"--tasks: {unknown or 'none'} not among {', '.join(MANIPULATION_ONLY)}")
    if args.episodes % args.envs:
        parser.error(f"--episodes {args.episodes} must be a multiple of --envs {args.envs}")
    torch.set_num_threads(2)
    walker_policy = load_policy(args.walker)
    if walker_policy.cfg.env.robot != "humanoid":
        parser.error(f"--walker drives '{walker_policy.cfg.env.robot}'; the whole-body tasks need the humanoid")
    args.out.mkdir(parents=True, exist_ok=True)
    held_out = args.seed + 1000  # evaluation seeds, never trained on

    def env_for(task: str, manipulation_only: bool, seed: int) -> WholeBodyVecEnv:
        extra = MANIPULATION_ONLY[task] if manipulation_only else {}
        return WholeBodyVecEnv(whole_body_config(walker_policy, task=task, num_envs=args.envs, seed=seed, **extra))

    def evaluate(env: WholeBodyVecEnv, controller: WholeBodyController | Callable, name: str) -> dict:
        """Held-out episodes of a controller, or of a plain act(obs) -> actions function."""
        t0 = time.perf_counter()
        if isinstance(controller, WholeBodyController):
            act, reset = (lambda obs: controller.act(obs["task"])), controller.reset
        else:
            act, reset = controller, None
        result = run_episodes(env, act, args.episodes, seed=held_out, reset=reset)
        log(
            f"  {name}: success {result['success']:.3f}, falls {result['falls']:.3f} ({time.perf_counter() - t0:.0f} s)"
        )
        return result

    def learn(
        task, name, role, env, observe, control, obs_size, act_size, loop, *, reset=None, parent=None, extra=None
    ):
        """Train one learner with `ppo_loop`, save it (lineage: `parent`), return its deterministic policy."""
        actor, normalizer, stats = ppo_loop(
            env, observe, control, obs_size, act_size, loop, reset=reset, on_iteration=_progress(name)
        )
        save_mlp_policy(
            args.out / task / role,
            actor,
            normalizer,
            role=role,
            cfg=loop,
            obs_size=obs_size,
            act_size=act_size,
            stats=stats,
            parent=parent,
            extra=extra,
        )
        return mean_function(actor, normalizer), stats

    def run_task(task: str) -> dict:
        log(f"== {task}")
        arm_kw = ARMS[task]
        success: dict[str, float] = {}
        falls: dict[str, float] = {}
        minutes: dict[str, float] = {}
        seconds: dict[str, float] = {}

        def record(name: str, result: dict) -> None:
            success[name], falls[name], seconds[name] = result["success"], result["falls"], result["mean_seconds"]

        # the scripted expert, on both versions of the task
        manip = env_for(task, True, args.seed)
        walker = Walker(walker_policy, manip)
        expert = WholeBodyController(manip, walker, IKArm(manip, **arm_kw))
        record("expert_manipulation", evaluate(manip, expert, "expert, manipulation only"))
        whole = env_for(task, False, args.seed)
        whole_walker = Walker(walker_policy, whole)
        expert_whole = WholeBodyController(whole, whole_walker, IKArm(whole, **arm_kw))
        record("expert", evaluate(whole, expert_whole, "expert, whole task"))

        # 1. demonstrations and the flow arm
        t0 = time.perf_counter()
        flow_cfg = FlowConfig(obs_dim=ARM_OBS_SIZE, action_dim=ARM_ACTION_SIZE, horizon=8, hidden=256, layers=3)
        obs, chunks, demo_stats = collect_arm_demos(
            manip, expert, args.demo_steps or DEMO_STEPS[task], horizon=flow_cfg.horizon, seed=args.seed
        )
        log(f"  demonstrations: {demo_stats}")
        train = FlowTrainConfig(steps=args.flow_steps, batch_size=256, seed=args.seed)
        flow, flow_losses = train_flow_policy(obs, chunks, flow_cfg, train)
        minutes["flow"] = (time.perf_counter() - t0) / 60
        flow_ckpt = save_flow_policy(
            args.out / task / "flow",
            flow,
            train,
            samples=len(obs),
            data={"source": f"scripted expert (hand-off + IK arm), manipulation-only {task}", **demo_stats},
            scores=flow_losses,
            parent=walker_policy.checkpoint,
        )
        log(f"  flow: {flow_losses} ({minutes['flow']:.1f} min)")
        record("flow", evaluate(manip, WholeBodyController(manip, walker, FlowArm(manip, flow)), "flow"))

        # 2. the residual on top of the flow arm
        trainer_arm = ResidualArm(manip, FlowArm(manip, flow, seed=1), None)
        trainer = WholeBodyController(manip, walker, trainer_arm)

        def control_residual(obs, action):
            trainer_arm.next_residual = action
            return trainer.act(obs["task"])

        residual, residual_stats = learn(
            task,
            "residual",
            "arm_residual",
            manip,
            lambda obs: trainer_arm.observe(*_arm_intents(trainer, manip)),
            control_residual,
            RESIDUAL_OBS_SIZE,
            ARM_ACTION_SIZE,
            LoopConfig(minutes=args.residual_minutes, seed=args.seed, init_std=0.3),
            reset=trainer.reset,
            parent=flow_ckpt,
            extra={"bound": trainer_arm.bound},
        )
        minutes["flow_residual"] = residual_stats["minutes"]
        arm = ResidualArm(manip, FlowArm(manip, flow), residual)
        record("flow_residual", evaluate(manip, WholeBodyController(manip, walker, arm), "flow + residual"))

        # 3 and 4. the whole task: the hand-off, then the coordinator
        whole_arm = ResidualArm(whole, FlowArm(whole, flow), residual)
        handoff = WholeBodyController(whole, whole_walker, whole_arm)
        record("no_coordination", evaluate(whole, handoff, "hand-off (no coordination)"))
        coordinated_arm = ResidualArm(whole, FlowArm(whole, flow, seed=2), residual)
        coordinated = WholeBodyController(whole, whole_walker, coordinated_arm)

        def control_coordinator(obs, action):
            coordinated.next_coordination = action
            return coordinated.act(obs["task"])

        coordinated.coordinator, coordination_stats = learn(
            task,
            "coordinator",
            "coordinator",
            whole,
            lambda obs: coordinated.observation(obs["task"]),
            control_coordinator,
            COORDINATOR_OBS_SIZE,
            COORDINATOR_ACTION_SIZE,
            LoopConfig(
                minutes=args.coordination_minutes,
                seed=args.seed,
                decision_every=coordinated.coordinate_every,
                init_std=0.3,
            ),
            reset=coordinated.reset,
            parent=flow_ckpt,
        )
        minutes["full"] = coordination_stats["minutes"]
        record("full", evaluate(whole, coordinated, "full (coordinator)"))

        # 5. flat PPO on the whole body, the budget of the three learned layers together
        budget = minutes["flow"] + minutes["flow_residual"] + minutes["full"]

        def flat_observe(obs):
            return np.concatenate([obs["policy"], obs["task"]], 1)

        flat, flat_stats = learn(
            task,
            "flat PPO",
            "flat_whole_body",
            whole,
            flat_observe,
            lambda obs, action: action,
            whole.walk.policy_layout.size + TASK_OBS_SIZE,
            whole.walk.robot.num_joints,
            LoopConfig(minutes=budget, seed=args.seed, hidden_sizes=(256, 128), init_std=0.5),
        )
        minutes["flat_ppo"] = flat_stats["minutes"]
        record("flat_ppo", evaluate(whole, lambda obs: flat(flat_observe(obs)), "flat PPO"))

        return {
            "success": success,
            "falls": falls,
            "mean_episode_s": seconds,
            "episodes": args.episodes,
            "train_minutes": {k: round(v, 2) for k, v in minutes.items()},
            "demonstrations": demo_stats,
            "train_success_rate": {
                "flow_residual": residual_stats["train_success_rate"],
                "full": coordination_stats["train_success_rate"],
                "flat_ppo": flat_stats["train_success_rate"],
            },
        }

    tasks = {task: run_task(task) for task in names}
    walk = {}
    for robot in ("biped", "humanoid"):
        path = ROOT / "docs" / f"learn_walk_{robot}.json"
        if path.is_file():
            final = json.loads(path.read_text())
            families = final.get("families") or final["curve"][-1]["families"]
            walk[robot] = {
                "lin_error_mps": round(float(np.mean([f["lin_error_mps"] for f in families.values()])), 3),
                "falls": round(float(np.mean([f["falls"] for f in families.values()])), 3),
                "source": str(path.relative_to(ROOT)),
            }
    print(json.dumps({"tasks": tasks, "walk": walk, "not_measured": NOT_BUILT, "walker": str(args.walker)}))


def _arm_intents(controller: WholeBodyController, env: WholeBodyVecEnv) -> tuple[np.ndarray, np.ndarray]:
    """(target, engaged) the controller's hand-off gives the arm now, leaving its state as it was."""
    _, engaged, target = controller.handoff.intents(env, update=False)
    return target, engaged


def _progress(name: str):
    last = [0.0]

    def report(stats: dict) -> None:
        if stats["minutes"] - last[0] >= 0.5:
            last[0] = stats["minutes"]
            log(
                f"  {name}: {stats['minutes']:.1f} min, it {stats['iteration']}, episodes {stats['episodes']}, "
                f"success {stats['success_rate']:.2f}, kl {stats['policy/kl']:.4f}"
            )

    return report


if __name__ == "__main__":
    main()
