import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from ogi import checkpoints as ckpt
from ogi.policies.fall_predictor import FallPredictor, FallPredictorConfig, load_fall_predictor
from ogi.training import fall_predictor as fp
from ogi.training.safety_commands import register
from tests.strict_json import loads_strict

SHIPPED = "ogi/policies/pretrained/go2_walk_gru"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_auroc_by_hand():
    labels = np.array([1, 0, 1, 0, 0], dtype=bool)
    # positives 0.9, 0.4; negatives 0.5, 0.1, 0.4: pairs won 3 + (1 + 0.5 tie) of 6 -> 4.5 / 6
    assert fp.auroc(np.array([0.9, 0.5, 0.4, 0.1, 0.4]), labels) == pytest.approx(0.75)
    assert fp.auroc(np.array([0.9, 0.1, 0.8, 0.2, 0.3]), labels) == 1.0
    assert np.isnan(fp.auroc(np.array([0.1, 0.2]), np.array([False, False])))


def test_metrics_and_lead_time_by_hand(monkeypatch):
    # episode 0 falls: samples 4, 3, 2, 1, 0 steps before it; episode 1 does not fall
    steps_to_fall = np.array([4, 3, 2, 1, 0, -1, -1, -1])
    episode = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    labels = (steps_to_fall >= 0) & (steps_to_fall < 2)
    data = fp.FallData(
        windows=np.zeros((8, 1, 2), np.float32),
        valid=np.ones((8, 1), bool),
        labels=labels,
        steps_to_fall=steps_to_fall,
        episode=episode,
        ctrl_dt_s=0.02,
        falls=1,
        episodes=2,
    )
    p = np.array([0.1, 0.7, 0.2, 0.9, 0.8, 0.1, 0.6, 0.2])
    monkeypatch.setattr(fp, "predict", lambda predictor, d: p)
    predictor = FallPredictor(FallPredictorConfig(obs_dim=2, window=1, horizon_s=0.04))
    m = fp.evaluate_predictor(predictor, data, threshold=0.5, lookback_s=1.0)
    # fired: samples 1, 3, 4, 6; positives 3, 4
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == 1.0
    # first firing 3 steps before the fall's step: lead (3 + 1) x 0.02 s
    assert m["mean_lead_time_s"] == pytest.approx(0.08)
    assert m["falls_detected"] == 1.0 and m["false_alarm_episodes"] == 1.0
    # a shorter look-back only sees the later firing
    assert fp.evaluate_predictor(predictor, data, lookback_s=0.06)["mean_lead_time_s"] == pytest.approx(0.04)


def test_labels_follow_the_falls():
    cfg = fp.FallPredictorTrainConfig(
        num_envs=3,
        seconds=3.0,
        push_velocity_mps=6.0,
        push_interval_s=(1.0, 1.5),
        terrain=False,
        horizon_s=0.2,
        window=3,
    )
    data = fp.collect_fall_data(SHIPPED, cfg, seed=3)
    assert data.falls > 0
    horizon = round(0.2 / 0.02)
    np.testing.assert_array_equal(data.labels, (data.steps_to_fall >= 0) & (data.steps_to_fall < horizon))
    # the padding of a window is in front: once a slot is valid, every later one is
    assert np.all(np.diff(data.valid.astype(int), axis=1) >= 0)
    assert np.all(data.valid[:, -1])
    # samples of one episode that fell count down to its fall step by step
    ep = data.episode[data.labels][0]
    countdown = data.steps_to_fall[data.episode == ep]
    np.testing.assert_array_equal(countdown, np.arange(countdown[0], -1, -1))


def test_cli_trains_saves_and_reloads(tmp_path):
    app = typer.Typer()
    register(app)
    out = tmp_path / "predictor"
    result = CliRunner().invoke(
        app,
        [
            SHIPPED,
            "--out",
            str(out),
            "--num-envs",
            "3",
            "--seconds",
            "4",
            "--push-mps",
            "6",
            "--flat",
            "--epochs",
            "2",
            "--horizon-s",
            "0.3",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = loads_strict(result.stdout.strip().splitlines()[-1])
    assert 0.0 <= summary["auroc"] <= 1.0 and summary["horizon_s"] == 0.3
    checkpoint = ckpt.latest_valid_checkpoint(out)
    assert checkpoint is not None
    # lineage: the parent is the policy the predictor watched
    policy = ckpt.load_checkpoint(SHIPPED).checkpoint
    assert checkpoint.parent_sha256 == policy.checkpoint_sha256
    predictor = load_fall_predictor(out)
    assert predictor.cfg.horizon_s == 0.3 and predictor.cfg.obs_dim == 45
    window = predictor.new_window(2)
    p = predictor.step(window, np.zeros((2, 45), np.float32))
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    # a second run into the same directory is refused with a clear error
    again = CliRunner().invoke(app, [SHIPPED, "--out", str(out), "--num-envs", "2", "--seconds", "1", "--flat"])
    assert again.exit_code == 2
    assert again.stderr == f"error: {out} already holds a checkpoint; choose another --out\n"


def test_cli_bad_input_names_the_problem(tmp_path):
    app = typer.Typer()
    register(app)
    missing = CliRunner().invoke(app, [str(tmp_path / "nothing")])
    # one line, the path whole however long the temporary directory is
    assert missing.exit_code == 2 and missing.stderr.startswith(f"error: {tmp_path / 'nothing'}: no valid checkpoint")
    assert missing.stderr.count("\n") == 1
    bad = CliRunner().invoke(app, [SHIPPED, "--horizon-s", "0"])
    assert bad.exit_code != 0 and "horizon-s" in bad.output
