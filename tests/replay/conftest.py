"""One short recording shared by the replay tests: domain randomization, frequent pushes, episode resets."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ogi.envs import WalkConfig
from ogi.envs.config import SimConfig

RECORDED_STEPS = 1000
SHORT_STEPS = 120
NUM_SIMS = 3


def walk_config(**changes) -> WalkConfig:
    cfg = WalkConfig(num_envs=NUM_SIMS, episode_length_s=4.0, seed=3, sim=SimConfig(sim_dt_s=0.002, nthread=1))
    cfg = dataclasses.replace(cfg, randomization=dataclasses.replace(cfg.randomization, push_interval_s=(0.5, 1.5)))
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> dict:
    """{"path", "steps": {name: (T, n, ...)}, "events": [...]}: a 1000-step random-action rollout recorded, and
    what the env itself reported at each step, collected beside the recorder for comparison."""
    from ogi.envs import WalkVecEnv
    from ogi.replay import Recorder

    path = Path(tmp_path_factory.mktemp("rec")) / "walk.mcap"
    env = WalkVecEnv(walk_config())
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    seen: dict[str, list] = {
        "qpos": [],
        "qvel": [],
        "reward": [],
        "command": [],
        "terminated": [],
        "truncated": [],
        "pushed": [],
        "tracking_lin_vel": [],
    }
    sizes = []
    with Recorder(env, path, meta={"source": "test"}) as recorder:
        for step in range(RECORDED_STEPS):
            command = env.command.copy()
            _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, (NUM_SIMS, env.robot.num_joints)))
            seen["command"].append(command)
            seen["reward"].append(reward.copy())
            seen["terminated"].append(terminated.copy())
            seen["truncated"].append(truncated.copy())
            seen["pushed"].append(info["pushed"].copy())
            seen["tracking_lin_vel"].append(info["reward/tracking_lin_vel"].copy())
            if not (terminated | truncated).any():  # after a reset the env holds the new episode's state
                seen["qpos"].append((step, env.rig.qpos().copy()))
                seen["qvel"].append((step, env.rig.qvel().copy()))
            if step == 500:
                recorder.add_event("safety", sim=1, cause="test_stop", data={"limit": 1.5})
            if step % 50 == 0:
                sizes.append(path.stat().st_size)
    env.close()
    return {"path": path, "seen": seen, "sizes": sizes, "env_cfg": walk_config()}


@pytest.fixture(scope="session")
def short_recording(recorded, tmp_path_factory) -> Path:
    """The first 2.4 s of the shared recording (pushes included), to keep rendering, plotting and CLI runs quick."""
    path = Path(tmp_path_factory.mktemp("short")) / "short.mcap"
    _first_steps(recorded["path"], path, SHORT_STEPS)
    return path


def _first_steps(source, target, steps):
    """A recording of the first `steps` steps of another, made by re-recording its messages."""
    from mcap.records import Attachment, Channel, Footer, Header, Message, Schema
    from mcap.stream_reader import StreamReader
    from mcap.writer import Writer

    with open(source, "rb") as f_in, open(target, "wb") as f_out:
        writer = Writer(f_out)
        channels, schemas = {}, {0: 0}
        for record in StreamReader(f_in).records:
            if isinstance(record, Header):
                writer.start(record.profile, record.library)
            elif isinstance(record, Schema):
                schemas[record.id] = writer.register_schema(record.name, record.encoding, record.data)
            elif isinstance(record, Channel):
                channels[record.id] = writer.register_channel(
                    record.topic, record.message_encoding, schemas[record.schema_id], record.metadata
                )
            elif isinstance(record, Attachment):
                writer.add_attachment(0, 0, record.name, record.media_type, record.data)
            elif isinstance(record, Message) and record.sequence < steps:
                writer.add_message(
                    channels[record.channel_id], record.log_time, record.data, record.publish_time, record.sequence
                )
            elif isinstance(record, Footer):
                break
        writer.finish()
