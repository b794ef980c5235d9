"""The safety layer changes PD gains mid-episode: a recording of it still replays bit for bit."""

import numpy as np

from ogi.replay import Recorder, Recording, replay_check
from tests.replay.conftest import NUM_SIMS, walk_config


def test_supervised_walk_with_fallback_gains_replays_exactly(tmp_path):
    from ogi.controllers.fallback import FallbackConfig
    from ogi.controllers.supervisor import SupervisorConfig
    from ogi.envs import WalkVecEnv
    from ogi.envs.supervised import SupervisedWalk

    env = WalkVecEnv(walk_config())
    supervised = SupervisedWalk(env, SupervisorConfig(), FallbackConfig())
    supervised.reset(seed=0)
    rng = np.random.default_rng(1)
    trips = []
    with Recorder(env, tmp_path / "supervised.mcap") as recorder:
        for _ in range(150):
            # violent actions trip the supervisors into their fallback
            _, _, _, _, info = supervised.step(rng.uniform(-3, 3, (NUM_SIMS, 12)))
            step = recorder.step_index - 1
            for sim in np.flatnonzero(info["tripped"]):
                recorder.add_event("safety", sim=int(sim), cause=str(info["mode"][sim]), step=step)
                trips.append((step, int(sim)))
    assert trips
    recording = Recording(tmp_path / "supervised.mcap")
    assert replay_check(recording).exact
    gain_changes = {
        (r.index, sim) for r in recording.steps() for sim, rows in r.model_rows.items() if "actuator_gainprm" in rows
    }
    assert set(trips) <= gain_changes  # the fallback's gains were recorded where each supervisor tripped
    assert {(e["step"], e["sim"]) for e in recording.events if e["kind"] == "safety"} == set(trips)
