"""What each lever on a training step's cost buys: physics settings, and the recurrent update's shape.

Physics: bare `Batch.step` of the go2 training scene (256 simulations, all cores, one 50 Hz policy step per call)
at 1 kHz, 500 Hz and 250 Hz, and at 250 Hz with one Newton iteration (MuJoCo Menagerie's go2_mjx.xml setting),
with collisions for feet and base only, and with sensors off. Learner: one PPO update (5 epochs) over a rollout of
24 steps x 256 envs for the old and the new GRU shape, its minibatch count, one and two torch threads; and one
minibatch's GRU forward and backward by a Python loop over `GRUCell` against `torch.gru` over reset-split,
padded segments. Variants run interleaved in rounds; figures are medians. Prints one JSON object.

    python benchmarks/training_levers.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import mujoco
import numpy as np
import torch
from mujoco import batch as mjbatch

from ogi.envs.config import SimConfig
from ogi.envs.rig import Rig
from ogi.policies import ActorConfig, Critic, CriticConfig, EmpiricalNormalizer, make_actor
from ogi.robots import get_robot
from ogi.training.ppo import PPO, PPOConfig

NUM_ENVS = 256
ROLLOUT_STEPS = 24
PHYSICS = {
    "1000hz": {"sim_dt_s": 0.001},
    "500hz": {"sim_dt_s": 0.002},
    "250hz": {"sim_dt_s": 0.004},
    "250hz_one_newton_iteration": {"sim_dt_s": 0.004, "solver_iterations": 1, "ls_iterations": 5},
    "250hz_feet_and_base_collide_only": {"sim_dt_s": 0.004, "feet_only": True},
    "250hz_sensors_off": {"sim_dt_s": 0.004, "sensors_off": True},
}
UPDATES = {
    "gru128_4_minibatches": {"recurrent_size": 128, "minibatches": 4},
    "gru64_4_minibatches": {"recurrent_size": 64, "minibatches": 4},
    "gru64_2_minibatches": {"recurrent_size": 64, "minibatches": 2},
    "mlp_4_minibatches": {"kind": "mlp", "minibatches": 4},
}


def physics_batch(sim_dt_s: float, feet_only: bool = False, sensors_off: bool = False, **solver):
    robot = get_robot("go2")
    rig = Rig(robot, SimConfig(sim_dt_s=sim_dt_s, **solver), randomize=True)
    m = rig.model
    if feet_only:
        for g in range(m.ngeom):
            body = m.body(m.geom_bodyid[g]).name
            if m.geom_bodyid[g] != 0 and not m.geom(g).name.endswith("_foot") and body != robot.base_body:
                m.geom_contype[g] = m.geom_conaffinity[g] = 0
    if sensors_off:
        m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_SENSOR
    batch = mjbatch.Batch(m, NUM_ENVS, nthread=0)
    rig.bind(batch)
    rig.reset_to_stand(np.arange(NUM_ENVS))
    rig.set_targets(np.tile(robot.default_pose, (NUM_ENVS, 1)), np.zeros((NUM_ENVS, robot.num_joints)))
    substeps = round(0.02 / sim_dt_s)
    batch.step(nstep=substeps * 25)  # settle onto the feet
    return batch, substeps


def ppo_update(kind: str = "gru", recurrent_size: int = 64, minibatches: int = 4) -> PPO:
    actor = make_actor(45, 12, ActorConfig(kind=kind, recurrent_size=recurrent_size, init_std=0.5))
    ppo = PPO(
        actor,
        Critic(64, CriticConfig()),
        EmpiricalNormalizer(45),
        EmpiricalNormalizer(64),
        NUM_ENVS,
        PPOConfig(minibatches=minibatches, epochs=5, rollout_steps=ROLLOUT_STEPS, adaptive_lr=False),
    )
    st = ppo.storage
    generator = torch.Generator().manual_seed(0)
    for buffer in (
        st.policy_obs,
        st.critic_obs,
        st.actions,
        st.means,
        st.log_probs,
        st.values,
        st.advantages,
        st.returns,
    ):
        buffer.copy_(torch.randn(buffer.shape, generator=generator))
    st.starts = torch.rand(ROLLOUT_STEPS, NUM_ENVS, generator=generator) < 0.01
    st.state0 = actor.initial_state(NUM_ENVS)
    ppo.begin_rollout()
    return ppo


def gru_loop(cell: torch.nn.GRUCell, x: torch.Tensor, h0: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    h, out = h0, []
    for t in range(x.shape[0]):
        h = cell(x[t], h.masked_fill(starts[t].view(-1, 1), 0.0))
        out.append(h)
    return torch.stack(out)


def gru_fused(cell: torch.nn.GRUCell, x: torch.Tensor, h0: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """The same outputs as `gru_loop`: every episode segment its own padded column of one `torch.gru` call."""
    steps, n, _ = x.shape
    begins = starts.clone()
    begins[0] = True
    segment = torch.cumsum(begins.long(), 0) - 1  # (T, n) segment number within its env
    count = segment[-1] + 1
    offset = torch.cumsum(count, 0) - count
    column = segment + offset
    t = torch.arange(steps).view(-1, 1).expand(steps, n)
    position = t - torch.cummax(torch.where(begins, t, torch.zeros_like(t)), 0).values
    padded = x.new_zeros(steps, int(count.sum()), x.shape[-1])
    padded[position, column] = x
    h_init = x.new_zeros(1, padded.shape[1], h0.shape[-1])
    h_init[0, offset] = h0.masked_fill(starts[0].view(-1, 1), 0.0)
    weights = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    out, _ = torch.gru(padded, h_init, weights, True, 1, 0.0, True, False, False)
    return out[position, column]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    batches = {name: physics_batch(**spec) for name, spec in PHYSICS.items()}
    physics = {name: [] for name in PHYSICS}
    updates = {f"{name}_{threads}_threads": [] for name in UPDATES for threads in (1, 2)}
    ppos = {name: ppo_update(**spec) for name, spec in UPDATES.items()}
    cell = torch.nn.GRUCell(45, 64)
    x = torch.randn(ROLLOUT_STEPS, NUM_ENVS // 4, 45)
    h0 = torch.randn(NUM_ENVS // 4, 64)
    starts = torch.rand(ROLLOUT_STEPS, NUM_ENVS // 4) < 0.02
    if not torch.allclose(gru_loop(cell, x, h0, starts), gru_fused(cell, x, h0, starts), atol=1e-5):
        raise AssertionError("the fused GRU must give the loop's outputs")
    gru = {"python_loop": [], "torch_gru_padded": []}
    for _ in range(args.rounds):
        for name, (batch, substeps) in batches.items():
            physics[name].append(
                10 * NUM_ENVS / timed(lambda b=batch, k=substeps: [b.step(nstep=k) for _ in range(10)])
            )
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, ppo in ppos.items():
                updates[f"{name}_{threads}_threads"].append(timed(ppo.update))
        torch.set_num_threads(1)
        gru["python_loop"].append(timed(lambda: gru_loop(cell, x, h0, starts).sum().backward()))
        gru["torch_gru_padded"].append(timed(lambda: gru_fused(cell, x, h0, starts).sum().backward()))
    samples = NUM_ENVS * ROLLOUT_STEPS
    print(
        json.dumps(
            {
                "num_envs": NUM_ENVS,
                "rounds": args.rounds,
                "physics_policy_steps_per_s": {k: round(statistics.median(v)) for k, v in physics.items()},
                "physics_steps_per_s": {k: round(statistics.median(v) * batches[k][1]) for k, v in physics.items()},
                "ppo_update_s": {k: round(statistics.median(v), 3) for k, v in updates.items()},
                "ppo_update_us_per_sample": {
                    k: round(statistics.median(v) / samples * 1e6, 1) for k, v in updates.items()
                },
                "gru_minibatch_forward_backward_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in gru.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
