"""How much of a privileged teacher a deployable student keeps, with and without the depth image and fine-tuning.

Trains a teacher (the go2 walk preset with actor_obs = "privileged" and the height scan on) for
`--teacher-minutes`, or takes `--teacher RUN`; distills a student with the depth camera and one without for
`--distill-minutes` each on the students' own rollouts; PPO-fine-tunes the depth student for `--finetune-minutes`
with beta KL(pi || pi_distilled); then judges all four with deterministic actions on held-out seeds
(fresh terrain seed, fresh command and randomization draws) with pushes every 2-4 s.
Target: student_over_teacher >= 0.9. On a teacher trained on terrain (the rough-terrain teacher of
`benchmarks/terrain_teacher.py`), `student_over_teacher` and `blind_over_teacher` are ratios of success rates on
held-out terrain (the curriculum's success: no fall, half the commanded distance) averaged over every kind at
the `--levels` judged, with the per-level, per-kind rates beside them; on a flat teacher they are ratios of mean
episode returns. Prints one JSON object.

    python benchmarks/distill.py [--teacher RUN] [--teacher-minutes 15] [--distill-minutes 4] \
        [--finetune-minutes 3] [--out runs/distill_bench] [--json docs/distill.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

from ogi.envs.sensing import HeightScanConfig
from ogi.training.config import TrainConfig, preset
from ogi.training.distill import DistillConfig, Distiller, load_teacher, student_config
from ogi.training.evaluate import evaluate, terrain_success

HELD_OUT_SEED = 4242  # eval seed: neither training nor `ogi eval`'s default
HELD_OUT_TERRAIN_SEED = 97


def teacher_config(minutes: float) -> TrainConfig:
    cfg = preset("go2", "walk")
    env = dataclasses.replace(cfg.env, height_scan=HeightScanConfig(enabled=True))
    # one update thread: on a shared 2-core machine a second one spins against the simulation
    return dataclasses.replace(
        cfg,
        env=env,
        actor_obs="privileged",  # the symmetry loss mirrors the privileged group too
        max_minutes=minutes,
        iterations=10**9,
        update_threads=1,
    )


def held_out(env_cfg):
    """The env a policy trained on, with a fresh terrain seed and pushes every 2-4 s."""
    randomization = dataclasses.replace(env_cfg.randomization, push_interval_s=(2.0, 4.0))
    terrain = dataclasses.replace(env_cfg.terrain, seed=HELD_OUT_TERRAIN_SEED)
    return dataclasses.replace(env_cfg, randomization=randomization, terrain=terrain)


def judge(actor, normalizer, env_cfg, actor_obs: str, num_envs: int, seconds: float) -> dict:
    result = evaluate(
        actor,
        normalizer,
        held_out(env_cfg),
        num_envs=num_envs,
        episode_s=seconds,
        seed=HELD_OUT_SEED,
        actor_obs=actor_obs,
    )
    return {
        "return": result.mean_return,
        "tracking_error_mps": result.tracking_error_mps,
        "fall_rate": result.fall_rate,
        "episode_length_s": result.mean_episode_length_s,
    }


def distill_student(teacher, out: Path, *, depth: bool, minutes: float) -> tuple[Distiller, dict]:
    cfg = student_config(teacher.cfg, depth=depth)
    distill_cfg = DistillConfig(max_minutes=minutes, collect_threads=1, update_threads=1)
    distiller = Distiller(teacher, cfg, distill_cfg, out)
    return distiller, distiller.train()


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 and math.isfinite(a) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, help="an existing teacher run (actor_obs = privileged)")
    parser.add_argument("--teacher-minutes", type=float, default=15.0)
    parser.add_argument("--distill-minutes", type=float, default=4.0)
    parser.add_argument("--finetune-minutes", type=float, default=3.0)
    parser.add_argument("--kl-coef", type=float, default=0.1)
    parser.add_argument("--eval-envs", type=int, default=32)
    parser.add_argument("--eval-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("runs/distill_bench"))
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--levels", type=int, nargs="*", default=[0, 3, 6, 9], help="curriculum levels judged on a terrain teacher"
    )
    parser.add_argument("--episodes-per-kind", type=int, default=8, help="episodes per kind and level judged")
    args = parser.parse_args()

    start = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)
    teacher_run = args.teacher
    if teacher_run is None:
        from ogi.training.runner import Runner

        teacher_run = args.out / "teacher"
        Runner(teacher_config(args.teacher_minutes), teacher_run).train(log=False)
    teacher = load_teacher(teacher_run)
    students = {}
    for name, depth in (("student", True), ("student_no_depth", False)):
        students[name] = distill_student(teacher, args.out / name, depth=depth, minutes=args.distill_minutes)

    from ogi.training.distill_finetune import finetune_student
    from ogi.training.policy_loading import load_policy

    tuned = None
    if args.finetune_minutes > 0:
        finetune_student(
            args.out / "student",
            args.out / "student_finetuned",
            minutes=args.finetune_minutes,
            reference_kl_coef=args.kl_coef,
            update_threads=1,
        )
        tuned = load_policy(args.out / "student_finetuned")

    scores = {
        "teacher": judge(
            teacher.actor, teacher.normalizer, teacher.cfg.env, "privileged", args.eval_envs, args.eval_seconds
        )
    }
    for name, (distiller, _) in students.items():
        distiller.student.eval()
        scores[name] = judge(
            distiller.student, distiller.normalizer, distiller.cfg.env, "policy", args.eval_envs, args.eval_seconds
        )
    if tuned is not None:
        scores["student_finetuned"] = judge(
            tuned[0], tuned[1], tuned[2].env, "policy", args.eval_envs, args.eval_seconds
        )

    judged = {"teacher": (teacher.actor, teacher.normalizer, teacher.cfg.env, "privileged")}
    for name, (distiller, _) in students.items():
        judged[name] = (distiller.student, distiller.normalizer, distiller.cfg.env, "policy")
    if tuned is not None:
        judged["student_finetuned"] = (tuned[0], tuned[1], tuned[2].env, "policy")
    terrain = None
    if teacher.cfg.env.terrain.enabled:
        terrain = {
            name: {
                str(level): terrain_success(
                    actor,
                    normalizer,
                    held_out(env),
                    level=level,
                    episodes_per_kind=args.episodes_per_kind,
                    seed=HELD_OUT_SEED,
                    actor_obs=obs,
                    episode_s=args.eval_seconds,
                )
                for level in args.levels
            }
            for name, (actor, normalizer, env, obs) in judged.items()
        }

    def mean_success(name: str) -> float:
        return float(sum(sum(r.values()) / len(r) for r in terrain[name].values()) / len(terrain[name]))

    teacher_return = scores["teacher"]["return"]
    out: dict = {
        "teacher_run": str(teacher_run),
        "teacher_env_steps": teacher.checkpoint.step,
        "teacher_return": teacher_return,
    }
    for name, score in scores.items():
        if name != "teacher":
            out[f"{name}_return"] = score["return"]
            out[f"{name}_return_over_teacher"] = ratio(score["return"], teacher_return)
    if terrain is not None:
        success = {name: mean_success(name) for name in terrain}
        out["terrain_success_mean"] = success
        out["student_over_teacher"] = ratio(success["student"], success["teacher"])
        out["blind_over_teacher"] = ratio(success["student_no_depth"], success["teacher"])
        if "student_finetuned" in success:
            out["student_finetuned_over_teacher"] = ratio(success["student_finetuned"], success["teacher"])
        out["terrain_success"] = terrain
    else:
        out["student_over_teacher"] = out["student_return_over_teacher"]
        out["blind_over_teacher"] = out["student_no_depth_return_over_teacher"]
    for name, score in scores.items():
        out[f"{name}_tracking_error_mps"] = score["tracking_error_mps"]
        out[f"{name}_fall_rate"] = score["fall_rate"]
    for name, (_, summary) in students.items():
        out[f"{name}_kl_first"] = summary["kl_first"]
        out[f"{name}_kl_last"] = summary["kl_last"]
        out[f"{name}_env_steps"] = summary["env_steps"]
    out.update(
        {
            "distill_minutes": args.distill_minutes,
            "finetune_minutes": args.finetune_minutes,
            "eval": f"{args.eval_envs} envs x {args.eval_seconds:g} s, seed {HELD_OUT_SEED}, terrain seed "
            f"{HELD_OUT_TERRAIN_SEED}, pushes every 2-4 s",
            "minutes": (time.perf_counter() - start) / 60,
        }
    )
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
    text = json.dumps(out, indent=2, allow_nan=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
