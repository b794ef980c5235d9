"""A trained policy from a run or checkpoint directory: its actor, observation normalizer and training config.

The actor's input size comes from the observation layouts the walk env builds for the run's config (policy group,
and the privileged group for a teacher), so a checkpoint loads without making an env.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ogi.checkpoints import Checkpoint, load_checkpoint, resolve_checkpoint
from ogi.envs.config import WalkConfig
from ogi.envs.observations import ObservationLayout, policy_layout, privileged_layout
from ogi.policies import Actor, EmpiricalNormalizer, make_actor
from ogi.robots import RobotSpec, get_robot
from ogi.training.config import TrainConfig, actor_observation, actor_observation_size, config_from_plain


class LoadedPolicy(NamedTuple):
    """A policy ready to act (eval mode, CPU) and where it came from; unpacks as ``actor, normalizer, cfg, ckpt``."""

    actor: Actor
    normalizer: EmpiricalNormalizer
    cfg: TrainConfig
    checkpoint: Checkpoint


def observation_layouts(env: WalkConfig, robot: RobotSpec) -> tuple[ObservationLayout, ObservationLayout]:
    """(policy, privileged) layouts of the walk env for ``env`` on ``robot``: the depth image and the height scan
    are in them only when enabled."""
    depth_pixels = env.depth_camera.pixels if env.depth_camera.enabled else 0
    scan_points = len(env.height_scan.offsets()) if env.height_scan.enabled else 0
    return (
        policy_layout(robot.num_joints, depth_pixels=depth_pixels, gait_clock=env.gait.enabled),
        privileged_layout(len(robot.foot_sites), scan_points=scan_points),
    )


def load_policy(path: Path) -> LoadedPolicy:
    """The policy of a checkpoint directory, or of a run directory's newest valid checkpoint.

    Raises NoValidCheckpointError (also a FileNotFoundError) if there is none, and another CheckpointError if the
    checkpoint does not verify.
    """
    loaded = load_checkpoint(resolve_checkpoint(Path(path)))
    cfg = config_from_plain(loaded.checkpoint.config)
    robot = get_robot(cfg.env.robot)
    policy, privileged = observation_layouts(cfg.env, robot)
    obs_dim = actor_observation_size(policy.size, privileged.size, cfg.actor_obs)
    actor = make_actor(obs_dim, robot.num_joints, cfg.actor)
    actor.load_state_dict(_under("actor/", loaded.weights))
    normalizer = EmpiricalNormalizer(obs_dim)
    normalizer.load_state_dict(_under("actor_normalizer/", loaded.weights))
    actor.eval()
    return LoadedPolicy(actor=actor, normalizer=normalizer, cfg=cfg, checkpoint=loaded.checkpoint)


def policy_function(
    run: Path,
    num_envs: int,
) -> tuple[Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray], WalkConfig]:
    """A deterministic actor from a run as a rollout policy function, and the env config it trained on.

    The function maps (an env observation dict, done (num_envs,) bool) to actions (num_envs, num_joints); a done
    env's recurrent state is reset before it acts.
    """
    actor, normalizer, cfg, _ = load_policy(run)
    state = [actor.initial_state(num_envs)]

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        state[0] = actor.reset_state(state[0], torch.as_tensor(done))
        mean, state[0] = actor(normalizer(torch.as_tensor(actor_observation(obs, cfg.actor_obs))), state[0])
        return mean.numpy()

    return act, cfg.env


def _under(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): tensor for name, tensor in tensors.items() if name.startswith(prefix)}
