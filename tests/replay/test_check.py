import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from ogi.replay import Recorder, Recording, VersionMismatchError, replay_check
from tests.replay.conftest import NUM_SIMS, RECORDED_STEPS, SHORT_STEPS, walk_config


def test_replay_is_bit_exact_over_1000_steps_with_randomization_pushes_and_resets(recorded):
    recording = Recording(recorded["path"])
    # the recording exercises what exact replay has to reproduce
    seen = recorded["seen"]
    assert np.stack(seen["pushed"]).any(axis=0).all()
    assert (np.stack(seen["terminated"]) | np.stack(seen["truncated"])).sum() >= NUM_SIMS
    steps = []
    result = replay_check(recording, progress=steps.append)
    assert result.exact, result.first_divergence
    assert result.steps == RECORDED_STEPS and steps[-1] == RECORDED_STEPS
    assert result.sims == tuple(range(NUM_SIMS))


class _Tampered(Recording):
    """The recording with one step's control of one simulation nudged by one bit."""

    def __init__(self, path, step, sim):
        super().__init__(path)
        self._at = (step, sim)

    def steps(self):
        for record in super().steps():
            if record.index == self._at[0]:
                ctrl = record.data["ctrl"].copy()
                ctrl[self._at[1], 0] = np.nextafter(ctrl[self._at[1], 0], np.inf)
                record.data = dict(record.data, ctrl=ctrl)
            yield record


def test_replay_reports_the_first_divergent_step(recorded):
    result = replay_check(_Tampered(recorded["path"], 123, 2))
    assert not result.exact
    assert result.first_divergence["step"] == 123 and result.first_divergence["sim"] == 2
    assert result.steps == 123


def test_replay_needs_the_recorded_model_patch_and_per_simulation_rows(recorded):
    recording = Recording(recorded["path"])
    recording.patch = {}
    assert replay_check(recording).first_divergence["step"] == 0
    recording = Recording(recorded["path"])
    recording.initial_model_rows = {}
    assert not replay_check(recording).exact


def test_model_field_changed_mid_rollout_replays_exactly(tmp_path):
    """A layer that lowers one simulation's PD gains mid-episode (no reset): replay follows it."""
    from ogi.envs import WalkVecEnv

    base = walk_config()
    env = WalkVecEnv(dataclasses.replace(base, randomization=dataclasses.replace(base.randomization, enabled=False)))
    env.reset(seed=0)
    assert env.batch.expanded("actuator_gainprm") is None
    path = tmp_path / "gains.mcap"
    with Recorder(env, path) as recorder:
        for step in range(40):
            if step == 20:
                gain, bias = env.batch.expand("actuator_gainprm"), env.batch.expand("actuator_biasprm")
                gain[1, env.rig.pd_ids, 0] *= 0.5
                bias[1, env.rig.pd_ids, 1] *= 0.5
                recorder.add_event("safety", sim=1, cause="soft_gains")
            env.step(np.full((NUM_SIMS, 12), 0.3))
    recording = Recording(path)
    assert replay_check(recording).exact
    changed = [r for r in recording.steps() if r.model_rows]
    assert [r.index for r in changed] == [20] and "actuator_gainprm" in changed[0].model_rows[1]
    assert [e["step"] for e in recording.events if e["kind"] == "safety"] == [20]


def test_version_mismatch_is_refused_unless_not_strict(recorded):
    recording = Recording(recorded["path"])
    recording.info = dict(recording.info, mujoco_version="3.0.0")
    with pytest.raises(VersionMismatchError, match="recorded with MuJoCo 3.0.0"):
        replay_check(recording, sims=[0])
    assert replay_check(recording, sims=[0], strict=False).exact


def test_cli_check_pass_and_json(short_recording):
    from typer.testing import CliRunner

    from ogi.cli import app

    out = CliRunner().invoke(app, ["replay", str(short_recording), "--check", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {
        "steps": SHORT_STEPS,
        "sims": list(range(NUM_SIMS)),
        "exact": True,
        "first_divergence": None,
    }
    out = CliRunner().invoke(app, ["replay", str(short_recording), "--check"])
    assert out.exit_code == 0 and "PASS" in out.output and f"{SHORT_STEPS} steps" in out.output


def test_cli_errors_are_one_line_without_traceback(recorded, tmp_path):
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(recorded["path"].read_bytes()[:5000])
    out = subprocess.run(
        [sys.executable, "-m", "ogi.cli", "replay", str(bad), "--check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "truncated recording" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_other_layers_find_the_recorder_of_an_env(tmp_path):
    from ogi.envs import WalkVecEnv

    env = WalkVecEnv(walk_config())
    env.reset(seed=0)
    assert Recorder.attached(env) is None
    with Recorder(env, tmp_path / "a.mcap") as recorder:
        assert Recorder.attached(env) is recorder
        env.step(np.zeros((NUM_SIMS, 12)))
        Recorder.attached(env).add_event("planner", sim=0, cause="new_goal", data={"goal_xy": [1.0, 2.0]})
    assert Recorder.attached(env) is None
    assert "step" not in env.__dict__ and "step" not in env.rig.__dict__  # the env's own methods are back
    events = Recording(tmp_path / "a.mcap").events
    assert {
        "step": 1,
        "time_s": 0.02,
        "sim": 0,
        "kind": "planner",
        "cause": "new_goal",
        "data": {"goal_xy": [1.0, 2.0]},
    } in events


def test_images_ride_on_the_camera_topic_and_replay_ignores_them(tmp_path):
    from ogi.envs import WalkVecEnv

    env = WalkVecEnv(walk_config())
    env.reset(seed=0)
    image = np.zeros((4, 6, 4))
    image[1, 2] = [1.0, 0.5, 0.0, 0.25]
    with Recorder(env, tmp_path / "a.mcap") as recorder:
        env.step(np.zeros((NUM_SIMS, 12)))
        recorder.add_image(image, sim=1)
        with pytest.raises(ValueError, match="height, width, channels"):
            recorder.add_image(np.zeros((4, 6)), sim=0)
        with pytest.raises(ValueError, match="finite"):
            recorder.add_image(np.full((2, 2, 3), np.nan), sim=0)
        env.step(np.zeros((NUM_SIMS, 12)))
    recording = Recording(tmp_path / "a.mcap")
    assert recording.camera_frames == 1 and recording.num_steps == 2
    (meta, stored), *_ = list(recording.images())
    assert meta == {"step": 1, "sim": 1, "name": "planner"}
    assert stored.dtype == np.uint8 and stored.shape == (4, 6, 4)
    assert stored[1, 2].tolist() == [255, 128, 0, 64] and stored.sum() == 255 + 128 + 64
    assert list(recording.images(sim=0)) == []


def test_a_recording_without_steps_is_valid(tmp_path):
    from ogi.envs import WalkVecEnv

    env = WalkVecEnv(walk_config())
    env.reset(seed=0)
    with Recorder(env, tmp_path / "empty.mcap"):
        pass
    recording = Recording(tmp_path / "empty.mcap")
    assert recording.num_steps == 0 and recording.initial_state.shape == (NUM_SIMS, env.batch.nstate)
    assert replay_check(recording).exact and replay_check(recording).steps == 0


def test_event_data_must_be_json(tmp_path):
    from ogi.envs import WalkVecEnv

    env = WalkVecEnv(walk_config())
    env.reset(seed=0)
    with Recorder(env, tmp_path / "e.mcap") as recorder:
        with pytest.raises(TypeError, match="JSON-serializable"):
            recorder.add_event("safety", data={"array": np.zeros(2)})
