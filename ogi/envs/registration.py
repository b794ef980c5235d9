"""Gymnasium ids of the `walk` task, registered by name only: making an environment is what loads MuJoCo."""

from __future__ import annotations

ENV_IDS = {"go2": "ogi/Go2Walk-v0", "biped": "ogi/BipedWalk-v0", "humanoid": "ogi/HumanoidWalk-v0"}
# the humanoid's whole-body tasks (ogi.envs.wholebody)
TASK_ENV_IDS = {
    "reach": "ogi/HumanoidReach-v0",
    "pick_place": "ogi/HumanoidPickPlace-v0",
    "push": "ogi/HumanoidPush-v0",
}


def register_envs() -> None:
    """Register every id in ENV_IDS and TASK_ENV_IDS with Gymnasium (string entry points; idempotent)."""
    import gymnasium

    for robot, env_id in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point="ogi.envs.single:WalkEnv",
                vector_entry_point="ogi.envs.single:make_walk_vec",
                kwargs={"robot": robot},
            )
    for task, env_id in TASK_ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="ogi.envs.single:WholeBodyEnv", kwargs={"task": task})
