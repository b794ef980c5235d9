"""Training data, training and judging of the fall predictor, from rollouts of a trained policy.

The policy walks (deterministic actions) under random pushes on rough terrain; every step's policy observation
window is labelled 1 if its episode ends in a fall within H s (the env's own fall: base or thigh contact, tilt,
low base), else 0. Steps whose next H s the rollout did not see are left out. Judged on held-out rollouts:
per-step precision, recall and AUROC, and per fall the lead time (how long before the fall the predictor first
fires within `lookback_s`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ogi.policies.fall_predictor import ARCHITECTURE, FallPredictor, FallPredictorConfig
from ogi.validation import ConfigError, check_interval, check_range


@dataclass(frozen=True, kw_only=True)
class FallPredictorTrainConfig:
    horizon_s: float = 0.5
    window: int = 5
    hidden_sizes: tuple[int, ...] = (64, 64)
    num_envs: int = 64
    seconds: float = 30.0  # simulated seconds of rollouts per simulation
    push_velocity_mps: float = 1.5
    push_interval_s: tuple[float, float] = (2.0, 3.0)
    terrain: bool = True  # rough terrain (the terrain family with its curriculum) instead of flat ground
    epochs: int = 12
    batch_size: int = 1024
    learning_rate: float = 1e-3
    threshold: float = 0.5  # fires at or above this probability
    lookback_s: float = 2.0  # how far before a fall a firing counts towards its lead time
    sim_threads: int = 1  # simulation threads (0: all cores); one avoids spinning workers on a shared machine

    def __post_init__(self) -> None:
        check_range("horizon_s", self.horizon_s, 0.02, 60.0)
        check_range("window", self.window, 1, 1000)
        check_range("num_envs", self.num_envs, 1, 100_000)
        check_range("seconds", self.seconds, 0.1, 1e6)
        check_range("push_velocity_mps", self.push_velocity_mps, 0.0, 10.0)
        check_interval("push_interval_s", self.push_interval_s, 0.02, 1e6)
        check_range("epochs", self.epochs, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 1 << 20)
        check_range("learning_rate", self.learning_rate, 1e-7, 1.0)
        check_range("threshold", self.threshold, 0.0, 1.0)
        check_range("lookback_s", self.lookback_s, 0.0, 1e6)
        check_range("sim_threads", self.sim_threads, 0, 1024)
        if not self.hidden_sizes or any(not isinstance(h, int) or h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes = {self.hidden_sizes!r} must be positive integers")


@dataclass(frozen=True)
class FallData:
    """Samples of one set of rollouts: windows (N, w, d) float32, valid (N, w) bool, labels (N,) bool,
    steps_to_fall (N,) int (policy steps from the sample to its episode's fall; -1: the episode did not fall),
    episode (N,) int, and the policy period."""

    windows: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    steps_to_fall: np.ndarray
    episode: np.ndarray
    ctrl_dt_s: float
    falls: int
    episodes: int


def _env_config(env, cfg: FallPredictorTrainConfig, seed: int):
    from ogi.envs.config import TerrainConfig

    randomization = dataclasses.replace(
        env.randomization, push_velocity_mps=cfg.push_velocity_mps, push_interval_s=cfg.push_interval_s
    )
    terrain = env.terrain
    if cfg.terrain and not terrain.enabled:
        terrain = TerrainConfig(enabled=True, seed=seed)
    sim = dataclasses.replace(env.sim, nthread=cfg.sim_threads)
    return dataclasses.replace(
        env, num_envs=cfg.num_envs, seed=seed, randomization=randomization, terrain=terrain, sim=sim
    )


@torch.no_grad()
def collect_fall_data(policy_path: Path, cfg: FallPredictorTrainConfig, *, seed: int) -> FallData:
    """Roll out the policy at `policy_path` and label every policy observation window."""
    from ogi.envs import WalkVecEnv
    from ogi.training.config import actor_observation
    from ogi.training.policy_loading import load_policy

    actor, normalizer, train_cfg, _ = load_policy(policy_path)
    env_cfg = _env_config(train_cfg.env, cfg, seed)
    env = WalkVecEnv(env_cfg)
    obs, _ = env.reset(seed=seed)
    n, dt = cfg.num_envs, env_cfg.sim.ctrl_dt_s
    steps = max(1, round(cfg.seconds / dt))
    d = env.policy_layout.size
    state = actor.initial_state(n)
    policy_obs = np.zeros((steps, n, d), dtype=np.float32)
    episode_ids = np.zeros((steps, n), dtype=np.int64)
    step_in_episode = np.zeros((steps, n), dtype=np.int64)
    current = np.arange(n)
    next_id, count = n, np.zeros(n, dtype=np.int64)
    fall_at: dict[int, int] = {}  # episode -> rollout step of its fall
    ended: dict[int, int] = {}  # episode -> rollout step it ended at (fall or time-out)
    for t in range(steps):
        policy_obs[t] = obs["policy"]
        episode_ids[t] = current
        step_in_episode[t] = count
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, train_cfg.actor_obs))), state)
        obs, _, terminated, truncated, info = env.step(mean.numpy())
        done = terminated | truncated
        for i in np.flatnonzero(done):
            ended[int(current[i])] = t
            if info["fell"][i]:
                fall_at[int(current[i])] = t
        state = actor.reset_state(state, torch.as_tensor(done))
        count = np.where(done, 0, count + 1)
        new = np.flatnonzero(done)
        current[new] = next_id + np.arange(len(new))
        next_id += len(new)

    w = cfg.window
    horizon = max(1, round(cfg.horizon_s / dt))
    flat_ep = episode_ids.T.reshape(-1)  # env-major, so each env's steps are contiguous
    flat_t = np.tile(np.arange(steps), n)
    flat_k = step_in_episode.T.reshape(-1)
    obs_env_major = policy_obs.transpose(1, 0, 2).reshape(-1, d)
    env_row = np.repeat(np.arange(n), steps) * steps
    windows = np.zeros((len(flat_ep), w, d), dtype=np.float32)
    valid = np.zeros((len(flat_ep), w), dtype=bool)
    for lag in range(w):
        # slot w-1-lag holds the observation `lag` steps back, if it belongs to the same episode
        ok = flat_k >= lag
        source = env_row + np.maximum(flat_t - lag, 0)
        windows[ok, w - 1 - lag] = obs_env_major[source[ok]]
        valid[ok, w - 1 - lag] = True
    fall_step = np.array([fall_at.get(int(e), -1) for e in flat_ep])
    end_step = np.array([ended.get(int(e), -1) for e in flat_ep])
    steps_to_fall = np.where(fall_step >= 0, fall_step - flat_t, -1)
    labels = (steps_to_fall >= 0) & (steps_to_fall < horizon)
    # a sample is known if its episode ended, or the rollout saw the whole horizon after it
    known = (end_step >= 0) | (flat_t + horizon < steps)
    episodes = len(set(ended))
    return FallData(
        windows=windows[known],
        valid=valid[known],
        labels=labels[known],
        steps_to_fall=steps_to_fall[known],
        episode=flat_ep[known],
        ctrl_dt_s=dt,
        falls=len(fall_at),
        episodes=episodes,
    )


def train_predictor(data: FallData, cfg: FallPredictorTrainConfig, *, seed: int = 0) -> tuple[FallPredictor, dict]:
    """Fit a predictor by class-weighted binary cross-entropy; (predictor, training stats)."""
    if data.labels.sum() == 0:
        raise ValueError("the training rollouts hold no fall: raise push_velocity_mps or seconds")
    torch.manual_seed(seed)
    d = data.windows.shape[-1]
    predictor = FallPredictor(
        FallPredictorConfig(
            obs_dim=d,
            window=cfg.window,
            hidden_sizes=cfg.hidden_sizes,
            horizon_s=cfg.horizon_s,
            ctrl_dt_s=data.ctrl_dt_s,
        )
    )
    real = data.windows[data.valid]
    predictor.set_normalization(torch.as_tensor(real.mean(axis=0)), torch.as_tensor(real.std(axis=0)))
    windows, valid = torch.as_tensor(data.windows), torch.as_tensor(data.valid)
    labels = torch.as_tensor(data.labels, dtype=torch.float32)
    positives = float(labels.sum())
    # weight positives up to balance the classes: falls are rare steps
    pos_weight = torch.tensor(min((len(labels) - positives) / positives, 100.0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=cfg.learning_rate)
    losses = []
    for _ in range(cfg.epochs):
        total = 0.0
        order = torch.randperm(len(labels))
        for batch in order.split(cfg.batch_size):
            loss = loss_fn(predictor(windows[batch], valid[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(labels))
    predictor.eval()
    return predictor, {"loss_first_epoch": losses[0], "loss_last_epoch": losses[-1], "pos_weight": float(pos_weight)}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: Pr(score of a positive > score of a negative), ties counting half."""
    labels = labels.astype(bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties (1-based)
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for s, c in zip(start, counts):
        ranks[order[s : s + c]] = s + (c + 1) / 2.0
    # Mann-Whitney U = sum of positive ranks - pos (pos + 1) / 2
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


@torch.no_grad()
def predict(predictor: FallPredictor, data: FallData) -> np.ndarray:
    logits = predictor(torch.as_tensor(data.windows), torch.as_tensor(data.valid))
    return torch.sigmoid(logits).numpy()


def evaluate_predictor(
    predictor: FallPredictor, data: FallData, *, threshold: float = 0.5, lookback_s: float = 2.0
) -> dict[str, float]:
    """Per-step precision, recall, AUROC; per fall: detection share and mean lead time; false alarms per episode."""
    p = predict(predictor, data)
    fired = p >= threshold
    labels = data.labels.astype(bool)
    tp = int((fired & labels).sum())
    precision = tp / max(int(fired.sum()), 1)
    recall = tp / max(int(labels.sum()), 1)
    lookback = round(lookback_s / data.ctrl_dt_s)
    leads = []
    falls = np.unique(data.episode[data.steps_to_fall >= 0])
    for episode in falls:
        rows = (data.episode == episode) & (data.steps_to_fall >= 0) & (data.steps_to_fall < lookback) & fired
        if rows.any():
            # steps_to_fall 0: the fall comes within the next policy step
            leads.append((int(data.steps_to_fall[rows].max()) + 1) * data.ctrl_dt_s)
    no_fall = np.unique(data.episode[data.steps_to_fall < 0])
    false_alarm = [bool(fired[data.episode == e].any()) for e in no_fall]
    return {
        "precision": float(precision),
        "recall": float(recall),
        "auroc": auroc(p, labels),
        "falls": int(len(falls)),
        "falls_detected": float(len(leads) / max(len(falls), 1)),
        "mean_lead_time_s": float(np.mean(leads)) if leads else float("nan"),
        "false_alarm_episodes": float(np.mean(false_alarm)) if false_alarm else float("nan"),
        "samples": int(len(labels)),
        "positive_share": float(labels.mean()),
        "threshold": threshold,
        "horizon_s": predictor.cfg.horizon_s,
    }


def save_predictor(
    out: Path,
    predictor: FallPredictor,
    cfg: FallPredictorTrainConfig,
    *,
    policy_checkpoint,
    metrics: dict,
    train_stats: dict,
    samples: int,
):
    """Write the predictor as a checkpoint whose lineage parent is the policy it was trained beside."""
    from ogi import checkpoints as ckpt
    from ogi.training.config import config_to_dict

    weights = {f"predictor/{k}": v.contiguous() for k, v in predictor.state_dict().items()}
    config = {"architecture": ARCHITECTURE, "predictor": predictor.cfg.to_dict(), "train": config_to_dict(cfg)}
    scores = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    data = {
        "policy_checkpoint_sha256": policy_checkpoint.checkpoint_sha256,
        "train": json.loads(json.dumps(train_stats)),
    }
    return ckpt.save_checkpoint(
        out,
        step=samples,
        iteration=cfg.epochs,
        weights=weights,
        state={},
        config=config,
        reward_weights={},
        data_manifest=data,
        eval_scores=scores,
        parent=policy_checkpoint,
    )
