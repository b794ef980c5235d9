"""Gait features, clips, labellers, the Bradley-Terry gait reward model, its checkpoint and the fine-tuning hook."""

import dataclasses

import numpy as np
import pytest
import torch

from ogi import checkpoints as ckpt
from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import SimConfig
from ogi.lm import reward_model as lm_reward_model
from ogi.training import preference
from ogi.training.preference import (
    GaitRewardModel,
    PairSet,
    PreferenceConfig,
    PreferenceRewardHook,
    load_gait_reward_model,
    pairwise_accuracy,
    save_gait_reward_model,
    train_gait_reward_model,
)
from ogi.training.preference_benchmark import BenchmarkSizes, matched_win_rate
from ogi.training.preference_data import (
    AGGREGATE_NAMES,
    FEATURE_NAMES,
    ClipRecorder,
    Clips,
    HeldOutStyleLabeller,
    LinearStyleLabeller,
    PreStep,
    clip_aggregates,
    gait_features,
    label_pairs,
    pair_by_command,
)
from ogi.training.runner import Runner
from ogi.validation import ConfigError
from tests.training.test_train_e2e import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F = {name: i for i, name in enumerate(FEATURE_NAMES)}
A = {name: i for i, name in enumerate(AGGREGATE_NAMES)}


def _env(n: int = 3) -> WalkVecEnv:
    env = WalkVecEnv(WalkConfig(num_envs=n, sim=SimConfig(sim_dt_s=0.004, nthread=1)))
    env.reset(seed=0)
    return env


def _step(env: WalkVecEnv, action: np.ndarray) -> np.ndarray:
    before = PreStep.of(env)
    env.step(action)
    return gait_features(env, action, before)


def test_features_have_one_row_per_env_and_jerky_actions_raise_the_jerk():
    env = _env()
    n, j = env.num_envs, env.robot.num_joints
    smooth = [_step(env, np.full((n, j), 0.1)) for _ in range(3)][-1]
    assert smooth.shape == (n, len(FEATURE_NAMES)) and smooth.dtype == np.float32
    assert np.all(np.isfinite(np.delete(smooth, [F["swing_clearance_m"], F["stance_slip_mps"]], axis=1)))
    np.testing.assert_allclose(smooth[:, F["action_jerk"]], 0.0, atol=1e-7)
    # a_{t-2} = 0.1, a_{t-1} = 0.5, a_t = -0.5: (a_t - 2 a_{t-1} + a_{t-2})^2 = (-0.5 - 1.0 + 0.1)^2 = 1.96
    _step(env, np.full((n, j), 0.5))
    jerky = _step(env, np.full((n, j), -0.5))
    np.testing.assert_allclose(jerky[:, F["action_jerk"]], 1.96, rtol=1e-5)
    torque, joint_vel = env.rig.joint_torque(), env.rig.joint_vel()
    np.testing.assert_allclose(jerky[:, F["power_w"]], np.abs(torque * joint_vel).sum(axis=1), rtol=1e-5)
    assert np.all(jerky[:, F["base_height_m"]] > 0.1)


def test_aggregates_by_hand():
    features = np.zeros((1, 4, len(FEATURE_NAMES)), np.float32)
    features[0, :, F["swing_clearance_m"]] = [0.02, np.nan, 0.06, 0.04]  # NaN: no foot in the air
    features[0, :, F["stance_slip_mps"]] = np.nan  # never in contact: counts as no slip
    features[0, :, F["base_height_m"]] = [0.3, 0.3, 0.32, 0.32]
    features[0, :, F["power_w"]] = 50.0
    features[0, :, F["speed_mps"]] = [0.4, 0.6, 0.5, 0.5]
    agg = clip_aggregates(features)[0]
    assert agg.shape == (len(AGGREGATE_NAMES),)
    assert agg[A["clearance_mean_m"]] == pytest.approx(0.04)
    assert agg[A["slip_mean_mps"]] == 0.0
    assert agg[A["base_height_std_m"]] == pytest.approx(0.01)
    assert agg[A["energy_per_metre_j"]] == pytest.approx(100.0)


def test_recorder_cuts_clips_inside_episodes_after_the_settling_steps():
    recorder = ClipRecorder(num_envs=2, steps=2, settle_steps=1, obs_dim=1, action_dim=1)
    ended = [[False, False], [False, True], [False, False], [False, False], [False, False]]
    for t, done in enumerate(ended):
        obs = np.full((2, 1), t, np.float32)
        recorder.record(obs, obs, np.zeros((2, len(FEATURE_NAMES))), np.full((2, 3), t), np.array(done))
    clips = recorder.take()
    # env 0: step 0 settles, clips [1, 2] and [3, 4]; env 1: step 1 ends its episode, step 2 settles, clip [3, 4]
    assert sorted(zip(clips.env.tolist(), clips.obs[:, 0, 0].tolist())) == [(0, 1.0), (0, 3.0), (1, 3.0)]
    np.testing.assert_array_equal(clips.start, clips.obs[:, 0, 0])
    assert len(recorder.take()) == 0


def test_pairs_are_disjoint_and_close_in_command():
    rng = np.random.default_rng(0)
    commands = rng.uniform(-1, 1, (60, 3))
    pairs = pair_by_command(commands, rng, max_gap=0.5)
    assert len(pairs) > 5 and len(np.unique(pairs)) == pairs.size
    assert np.all(np.linalg.norm(commands[pairs[:, 0]] - commands[pairs[:, 1]], axis=1) <= 0.5)


def _aggregates(good: bool) -> np.ndarray:
    agg = np.zeros((1, len(AGGREGATE_NAMES)), np.float32)
    values = {
        "clearance_mean_m": (0.08, 0.02),
        "clearance_p10_m": (0.06, 0.005),
        "slip_mean_mps": (0.05, 0.3),
        "slip_p90_mps": (0.1, 0.8),
        "jerk_mean": (0.05, 1.0),
        "jerk_p90": (0.1, 2.0),
        "roll_pitch_rate_mean_radps": (0.3, 1.0),
        "roll_pitch_rate_peak_radps": (0.8, 3.0),
        "base_height_std_m": (0.002, 0.01),
        "power_mean_w": (50.0, 150.0),
        "speed_mean_mps": (0.5, 0.5),
        "tracking_error_mean_mps": (0.05, 0.2),
        "energy_per_metre_j": (100.0, 300.0),
    }
    for name, (best, worst) in values.items():
        agg[0, A[name]] = best if good else worst
    return agg


@pytest.mark.parametrize("labeller", [LinearStyleLabeller(), HeldOutStyleLabeller()])
def test_labellers_prefer_the_clearly_better_clip(labeller):
    rng = np.random.default_rng(0)
    good, bad = _aggregates(True), _aggregates(False)
    assert labeller.prefer(good, bad, rng)[0] and not labeller.prefer(bad, good, rng)[0]
    noisy = dataclasses.replace(labeller, temperature=1.0)
    picks = noisy.prefer(np.repeat(good, 200, 0), np.repeat(bad, 200, 0), rng)
    assert 0.9 < picks.mean()


def _synthetic_clips(n: int, rng: np.random.Generator, steps: int = 6, obs_dim: int = 5, action_dim: int = 3) -> Clips:
    obs = rng.normal(size=(n, steps, obs_dim)).astype(np.float32)
    actions = rng.normal(size=(n, steps, action_dim)).astype(np.float32)
    aggregates = np.zeros((n, len(AGGREGATE_NAMES)), np.float32)
    # the style the labeller below reads: a nonlinear per-step score, averaged over the clip
    aggregates[:, 0] = (obs[..., 0] - actions[..., 0] ** 2).mean(axis=1)
    return Clips(
        obs=obs,
        actions=actions,
        features=np.zeros((n, steps, len(FEATURE_NAMES)), np.float32),
        commands=np.zeros((n, 3), np.float32),
        aggregates=aggregates,
        env=np.arange(n),
        start=np.zeros(n, np.int64),
    )


class _FirstAggregate:
    def prefer(self, a, b, rng):
        return a[:, 0] > b[:, 0]


def test_reward_model_learns_a_synthetic_preference_with_the_bradley_terry_loss():
    assert preference.bradley_terry_loss is lm_reward_model.bradley_terry_loss
    clips = _synthetic_clips(1200, np.random.default_rng(0))
    cfg = PreferenceConfig(epochs=25, hidden_sizes=(32, 32), learning_rate=3e-3, holdout_fraction=0.25)
    model, pairs, stats = train_gait_reward_model(clips, cfg, _FirstAggregate())
    assert stats["test_pairs"] == 150 and len(pairs) == stats["train_pairs"] == 450
    assert stats["loss_last_epoch"] < stats["loss_first_epoch"]
    assert stats["accuracy"] > 0.8
    fresh = _synthetic_clips(400, np.random.default_rng(1))
    ordered = label_pairs(_FirstAggregate(), fresh, np.arange(400).reshape(-1, 2), np.random.default_rng(0))
    assert pairwise_accuracy(model, PairSet.of(fresh, ordered)) > 0.8
    # the output normalization holds r's mean and spread over the training steps
    r = model.normalized(pairs.preferred_obs.reshape(-1, 5), pairs.preferred_actions.reshape(-1, 3))
    assert abs(r.mean()) < 0.5 and 0.5 < r.std() < 1.5


def test_checkpoint_round_trip_and_corrupt_or_mismatched_files_raise(tmp_path):
    clips = _synthetic_clips(40, np.random.default_rng(0))
    cfg = PreferenceConfig(epochs=1, hidden_sizes=(8,))
    model, pairs, stats = train_gait_reward_model(clips, cfg, _FirstAggregate())
    saved = save_gait_reward_model(
        tmp_path / "rm", model, cfg, parent=None, metrics=stats, pairs=len(pairs), labeller="first"
    )
    loaded = load_gait_reward_model(saved.path)
    obs, act = torch.as_tensor(clips.obs), torch.as_tensor(clips.actions)
    torch.testing.assert_close(loaded.clip_reward(obs, act), model.clip_reward(obs, act))
    assert float(loaded.reward_std) == float(model.reward_std)
    assert load_gait_reward_model(tmp_path / "rm").hidden_sizes == (8,)  # a directory of checkpoints: the newest

    weights = saved.path / ckpt.WEIGHTS_FILENAME
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError):
        load_gait_reward_model(saved.path)

    other = GaitRewardModel(5, 3, (16,))
    wrong = ckpt.save_checkpoint(
        tmp_path / "wrong",
        step=1,
        iteration=1,
        weights={f"reward_model/{k}": v for k, v in other.state_dict().items()},
        state={},
        config={"architecture": preference.ARCHITECTURE, "model": {"obs_dim": 5, "action_dim": 3, "hidden_sizes": [8]}},
        reward_weights={},
        data_manifest={},
    )
    with pytest.raises(ckpt.CheckpointError, match="do not fit"):
        load_gait_reward_model(wrong.path)
    fall = ckpt.save_checkpoint(
        tmp_path / "fall",
        step=1,
        iteration=1,
        weights={"predictor/w": torch.zeros(1)},
        state={},
        config={"architecture": "fall_predictor_mlp"},
        reward_weights={},
        data_manifest={},
    )
    with pytest.raises(ckpt.CheckpointError, match="not a gait reward model"):
        load_gait_reward_model(fall.path)


def _hook_runner(tmp_path, retrain_every: int) -> tuple[Runner, PreferenceRewardHook]:
    runner = Runner(tiny_config(), tmp_path / "run")
    env = runner.env
    torch.manual_seed(0)
    model = GaitRewardModel(env.policy_layout.size, env.robot.num_joints, (16,))
    cfg = PreferenceConfig(
        clip_s=0.06,  # 3 policy steps
        settle_s=0.0,
        hidden_sizes=(16,),
        measure_every=1,
        retrain_every=retrain_every,
        retrain_epochs=2,
        fresh_pairs=8,
        max_command_gap=100.0,
        reward_weight=0.5,
    )
    hook = PreferenceRewardHook(
        model, cfg, LinearStyleLabeller(), num_envs=env.num_envs, ctrl_dt_s=env.cfg.sim.ctrl_dt_s
    )
    runner.hooks.append(hook)
    return runner, hook


def test_hook_adds_the_model_reward(tmp_path):
    runner, hook = _hook_runner(tmp_path, retrain_every=0)
    action = np.random.default_rng(0).normal(size=(runner.env.num_envs, runner.env.robot.num_joints))
    obs = runner.obs["policy"].copy()
    hook.before_step(runner)
    _, reward, terminated, truncated, info = runner.env.step(action)
    total = hook.after_step(runner, action, reward.copy(), terminated, truncated, info)
    np.testing.assert_allclose(total, reward + 0.5 * hook.model.normalized(obs, action))
    np.testing.assert_allclose(info["reward/preference"], total - reward)


@pytest.mark.parametrize("retrain_every", [2, 0])
def test_hook_measures_every_iteration_and_retrains_on_schedule(tmp_path, retrain_every):
    runner, hook = _hook_runner(tmp_path, retrain_every)
    before = [p.detach().clone() for p in hook.model.parameters()]
    runner.train(iterations=4, progress=False, log=False, save_final=False)
    assert [h["iteration"] for h in hook.history] == [1.0, 2.0, 3.0, 4.0]
    assert hook.refits == (2 if retrain_every else 0)
    assert len(hook.pairs) == sum(h["fresh_pairs"] for h in hook.history)
    stats = runner.last_stats
    for key in ("preference/accuracy_fresh", "preference/accuracy_initial_model", "reward/preference"):
        assert key in stats and np.isfinite(stats[key])
    changed = any(not torch.equal(a, b) for a, b in zip(before, hook.model.parameters()))
    assert changed == bool(retrain_every)
    assert all(torch.equal(a, b) for a, b in zip(before, hook.initial_model.parameters()))
    if not retrain_every:  # never refitted: the current model is the initial one
        assert all(h["accuracy_fresh"] == h["accuracy_initial_model"] for h in hook.history)


def test_the_hook_rides_in_the_run_checkpoints(tmp_path):
    runner, hook = _hook_runner(tmp_path, retrain_every=1)
    runner.train(iterations=2, progress=False, log=False)
    assert "preference" in ckpt.load_checkpoint(runner.last_checkpoint.path).data_manifest["hooks"]
    fresh = Runner(tiny_config(), tmp_path / "other")
    torch.manual_seed(1)
    other = PreferenceRewardHook(
        GaitRewardModel(fresh.env.policy_layout.size, fresh.env.robot.num_joints, (16,)),
        hook.cfg,
        LinearStyleLabeller(),
        num_envs=fresh.env.num_envs,
        ctrl_dt_s=fresh.env.cfg.sim.ctrl_dt_s,
    )
    fresh.hooks.append(other)
    fresh.load_state(ckpt.load_checkpoint(runner.last_checkpoint.path))
    for a, b in zip(hook.model.parameters(), other.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(hook.initial_model.parameters(), other.initial_model.parameters()):
        assert torch.equal(a, b)
    assert other.history == hook.history and other.refits == hook.refits == 2
    assert other.rng.integers(1 << 30) == hook.rng.integers(1 << 30)


def test_matched_win_rate_compares_clips_of_the_same_window():
    rng = np.random.default_rng(0)
    ours, theirs = _synthetic_clips(4, rng), _synthetic_clips(4, rng)
    ours = dataclasses.replace(ours, start=np.array([0, 5, 0, 5]), env=np.array([0, 0, 1, 1]))
    theirs = dataclasses.replace(theirs, start=np.array([0, 5, 0, 9]), env=np.array([0, 0, 1, 1]))
    ours.aggregates[:, A["tracking_error_mean_mps"]] = [0.0, 1.0, 0.0, 0.0]
    theirs.aggregates[:, A["tracking_error_mean_mps"]] = 0.5
    ours.aggregates[:, :1] = theirs.aggregates[:, :1] = 0.0
    rate, count = matched_win_rate(HeldOutStyleLabeller(), ours, theirs)
    assert count == 3 and rate == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "changes",
    [
        {"clip_s": 0.0},
        {"hidden_sizes": ()},
        {"reward_weight": -1.0},
        {"measure_every": 2, "retrain_every": 3},
        {"measure_every": 0, "retrain_every": 2},
        {"epochs": 1.5},
    ],
)
def test_bad_config_raises(changes):
    with pytest.raises(ConfigError):
        PreferenceConfig(**changes)


def test_bad_benchmark_sizes_raise():
    with pytest.raises(ConfigError, match="noise_scales"):
        BenchmarkSizes(noise_scales=())
    with pytest.raises(ConfigError, match="eval_envs"):
        BenchmarkSizes(eval_envs=0)
