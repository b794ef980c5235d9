"""Start a run's actor from a trained policy: one whose observations are a prefix of the new run's, or one of a robot
whose joints the new run's robot has.

The common case is a teacher: its actor reads the policy group followed by the privileged group, so a walker
trained on the policy group alone gives it a gait from the first iteration. The first layer's weights for the
policy group are copied and those for the added inputs start at zero (the new actor acts exactly like the old
one until training uses them); every other tensor must match in shape. The normalizer keeps the source's
statistics for the shared inputs, starts the added ones at mean 0 and variance 1, and counts as one rollout's
worth of samples so that the new inputs' statistics settle within a few iterations. The critic comes along
the same way where it has the same layers and its inputs line up: with a fresh critic the first updates' advantages
are noise, and they undo what the actor knew.

Across robots (a biped's walker for a humanoid with the same legs) the same holds per joint name: the shared
joints' inputs and actions carry over, the others' start unread and at zero action.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ogi.checkpoints import Checkpoint, load_checkpoint, resolve_checkpoint
from ogi.training.policy_loading import load_policy
from ogi.validation import ConfigError


@torch.no_grad()
def warm_start(runner, source: Path) -> Checkpoint:
    """Load the actor, the critic (where it lines up) and their normalizers of `source` (a run or checkpoint
    directory) into `runner`; returns its checkpoint.

    The run's first checkpoint then names the source's as its parent, so `ogi verify` walks back into it.
    """
    actor, normalizer, cfg, checkpoint = load_policy(Path(source))
    if type(actor) is not type(runner.actor):
        raise ConfigError(
            f"--init-from {source}: its actor is {cfg.actor.kind!r}, this run's is {runner.cfg.actor.kind!r}"
        )
    if cfg.env.robot != runner.cfg.env.robot:
        _transplant(runner, actor, normalizer, cfg, source)
        runner.last_checkpoint = checkpoint
        return checkpoint
    old_dim, new_dim = actor.obs_dim, runner.actor.obs_dim
    if old_dim > new_dim:
        raise ConfigError(f"--init-from {source}: it reads {old_dim} observations, more than this run's {new_dim}")
    prefix = [(i, i) for i in range(old_dim)]  # added observations start with no influence
    _carry_over(source, actor, runner.actor, prefix, (old_dim, new_dim), None)
    _carry_normalizer(normalizer, runner.actor_normalizer, prefix, runner)
    # the critic too, where it has the same layers and its inputs line up (the same policy group, privileged
    # inputs only added at the end): a fresh critic's first advantages undo what the actor knew
    state = _state(source)
    old_critic = state["critic_normalizer/mean"].shape[0]
    lines_up = old_critic <= runner.critic_normalizer.mean.shape[0] and _same_policy_group(cfg, runner)
    if lines_up and cfg.critic == runner.cfg.critic:
        _carry_critic(runner, state, source, cfg, [(i, i) for i in range(old_critic)])
    runner.last_checkpoint = checkpoint
    return checkpoint


def _state(source: Path) -> dict[str, torch.Tensor]:
    """The tensors of the source's state file (critic, normalizers, optimizer)."""
    return load_checkpoint(resolve_checkpoint(Path(source))).state


def _same_policy_group(cfg, runner) -> bool:
    from ogi.robots.registry import get_robot
    from ogi.training.policy_loading import observation_layouts

    robot = get_robot(cfg.env.robot)
    return observation_layouts(cfg.env, robot)[0].size == observation_layouts(runner.cfg.env, robot)[0].size


def _index_maps(
    source: Path, cfg, runner
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """(actor observation, critic observation, action) index pairs (source, target) from joint names: the
    source's joints must all be the target's, and both must read the same observation terms (joint terms per
    joint). The critic reads the policy group and the privileged group."""
    from ogi.robots.registry import get_robot
    from ogi.training.config import actor_observation_size
    from ogi.training.policy_loading import observation_layouts

    old_robot, new_robot = get_robot(cfg.env.robot), get_robot(runner.cfg.env.robot)
    missing = [j for j in old_robot.joint_names if j not in new_robot.joint_names]
    if missing:
        raise ConfigError(
            f"--init-from {source}: trained for robot {cfg.env.robot!r}, whose joints {', '.join(missing)} "
            f"{runner.cfg.env.robot!r} does not have"
        )
    joint = [new_robot.joint_names.index(j) for j in old_robot.joint_names]
    old_layouts = observation_layouts(cfg.env, old_robot)
    new_layouts = observation_layouts(runner.cfg.env, new_robot)
    obs: list[tuple[int, int]] = []
    old_at = new_at = 0
    for old_layout, new_layout in zip(old_layouts, new_layouts, strict=True):
        if old_layout.names != new_layout.names:
            raise ConfigError(
                f"--init-from {source}: it reads {', '.join(old_layout.names)}, this run {', '.join(new_layout.names)}"
            )
        for old_size, new_size in zip(old_layout.sizes, new_layout.sizes, strict=True):
            if old_size == old_robot.num_joints and new_size == new_robot.num_joints:
                obs += [(old_at + i, new_at + j) for i, j in enumerate(joint)]
            elif old_size == new_size:
                obs += [(old_at + i, new_at + i) for i in range(old_size)]
            else:
                raise ConfigError(f"--init-from {source}: an observation term of {old_size} values is {new_size} here")
            old_at, new_at = old_at + old_size, new_at + new_size
    old_dim = actor_observation_size(old_layouts[0].size, old_layouts[1].size, cfg.actor_obs)
    new_dim = actor_observation_size(new_layouts[0].size, new_layouts[1].size, runner.cfg.actor_obs)
    if cfg.actor_obs != runner.cfg.actor_obs:
        raise ConfigError(
            f"--init-from {source}: it reads {cfg.actor_obs!r} observations, this run {runner.cfg.actor_obs!r}"
        )
    return [(i, j) for i, j in obs if i < old_dim and j < new_dim], obs, list(enumerate(joint))


def _transplant(runner, actor, normalizer, cfg, source: Path) -> None:
    """Start a robot's actor and critic from another robot's whose joints it has (a biped's legs on a humanoid):
    the inputs and outputs of the shared joints carry over by name, the other joints' start with no influence
    (zero input weights, zero output rows: they hold their default pose until training moves them)."""
    obs_map, critic_map, act_map = _index_maps(source, cfg, runner)
    old_act, new_act = (torch.tensor(ix) for ix in zip(*act_map, strict=True))
    _carry_over(source, actor, runner.actor, obs_map, (actor.obs_dim, runner.actor.obs_dim), (old_act, new_act))
    _carry_normalizer(normalizer, runner.actor_normalizer, obs_map, runner)
    # the critic too: a fresh one's advantages would undo the gait in the first updates
    _carry_critic(runner, _state(source), source, cfg, critic_map)


def _carry_critic(runner, state: dict[str, torch.Tensor], source: Path, cfg, critic_map) -> None:
    """The source's critic and its normalizer (from its `state` tensors) into `runner`'s, input by input along
    `critic_map`."""
    width = state["critic_normalizer/mean"].shape[0]
    critic = type(runner.critic)(width, cfg.critic)
    critic.load_state_dict({k.removeprefix("critic/"): v for k, v in state.items() if k.startswith("critic/")})
    critic_normalizer = type(runner.critic_normalizer)(width)
    critic_normalizer.load_state_dict(
        {k.removeprefix("critic_normalizer/"): v for k, v in state.items() if k.startswith("critic_normalizer/")}
    )
    _carry_over(source, critic, runner.critic, critic_map, (width, runner.critic_normalizer.mean.shape[0]), None)
    _carry_normalizer(critic_normalizer, runner.critic_normalizer, critic_map, runner)


def _carry_over(source: Path, old_net, new_net, obs_map, dims: tuple[int, int], act_map) -> None:
    """Copy `old_net` into `new_net`: same-shaped tensors as they are, the input layer's columns by `obs_map`
    (others zero; `dims`: the old and new input widths), and with `act_map` (old, new) the output rows and
    log-deviations by action (others zero)."""
    old_obs, new_obs = (torch.tensor(ix) for ix in zip(*obs_map, strict=True))
    old_obs_dim, new_obs_dim = dims
    old_act_dim = new_act_dim = -1
    if act_map is not None:
        old_act, new_act = act_map
        old_act_dim, new_act_dim = old_net.log_std.shape[0], new_net.log_std.shape[0]
    target = new_net.state_dict()
    for name, tensor in old_net.state_dict().items():
        if name not in target or set(target) != set(old_net.state_dict()):
            raise ConfigError(f"--init-from {source}: its networks differ from this run's (other sizes?)")
        destination = target[name]
        if tensor.shape == destination.shape:
            destination.copy_(tensor)  # the recurrence and the hidden layers: the same sizes on both robots
        elif tensor.dim() == 2 and tensor.shape[1] == old_obs_dim and destination.shape[1] == new_obs_dim:
            destination.zero_()
            destination[:, new_obs] = tensor[:, old_obs]  # the input layer: other inputs start unread
        elif tensor.shape[0] == old_act_dim and destination.shape[0] == new_act_dim:
            if not name.endswith("log_std"):  # other joints keep this run's initial deviation
                destination.zero_()  # the output layer: other joints' actions start at zero
            destination[new_act] = tensor[old_act]
        else:
            raise ConfigError(
                f"--init-from {source}: {name} is {tuple(tensor.shape)} there and {tuple(destination.shape)} here"
            )
    new_net.load_state_dict(target)


def _carry_normalizer(old, new, obs_map, runner) -> None:
    """The shared inputs' statistics carried over by `obs_map`, the others at mean 0 and variance 1, counted as
    one rollout's worth of samples so that the new inputs' statistics settle within a few iterations."""
    old_obs, new_obs = (torch.tensor(ix) for ix in zip(*obs_map, strict=True))
    new.mean.zero_()
    new.var.fill_(1.0)
    new.mean[new_obs] = old.mean[old_obs]
    new.var[new_obs] = old.var[old_obs]
    rollout_samples = runner.cfg.env.num_envs * runner.cfg.ppo.rollout_steps
    new.count.fill_(min(float(old.count), float(rollout_samples)))
