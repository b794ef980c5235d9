"""Instruction episodes in simulation: a decider at 5 Hz, the walking policy at 50 Hz, the PD under it at the
physics rate, all on one `ControlClock`.

`play_episodes` runs a list of (layout, instruction) episodes in waves of the arena's simulations. Every 200 ms each
running episode's decider (the scripted oracle, or the planner) sees the camera image, the odometry since the
instruction began and the instruction, and answers a stage and a subgoal (a codebook index, or STOP); the subgoal
becomes the walking policy's velocity command until the next decision. A `Tracker` per episode judges success by the
instruction's programmatic criteria; an episode ends when its decider says STOP, when it falls, or at its time limit.
What every decider saw and chose is kept (for supervised fine-tuning, RL and the verifier), with a flag on each
subgoal that heads into an obstacle or an object that is not the goal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ogi.controllers.clock import ControlClock
from ogi.controllers.fallback import FallbackConfig
from ogi.controllers.supervisor import SafetyEvent, SupervisorConfig
from ogi.envs.instructions import GoTo, Instruction, Tracker, obstacle_distance, time_limit_for
from ogi.envs.layout import STOP, Layout, subgoal_command
from ogi.envs.oracle import DECISION_S, Oracle
from ogi.envs.supervised import SupervisedWalk

POLICY_HZ = 50.0
LOOKAHEAD_S = 0.6  # how far ahead a subgoal is checked for heading into something
CLEARANCE_M = 0.3
OBJECT_RADIUS_M = 0.2  # about the arena objects' footprint
# the planner's stage clock saturates here: long enough to hold a stop for a second, too short to time a search
# (with an unbounded clock, imitation learned to turn for so many seconds and walk, whatever the camera showed)
STAGE_CLOCK_S = 2.0

# the walking policy: (observations, done mask) -> actions, as `ogi.training.policy_loading.policy_function` gives
WalkerFn = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Episode:
    layout: Layout
    instruction: Instruction


@dataclass
class DecisionInputs:
    """What the deciders of `k` running episodes see at one decision (rows in the order of `episodes`)."""

    episodes: np.ndarray  # (k,) index into the episode list
    images: np.ndarray | None  # (k, H, W, 4) float32 in [0, 1], None when no decider needs it
    states: np.ndarray  # (k, STATE_DIM) float32, see `planner_state`
    texts: list[str]
    prev_stages: np.ndarray  # (k,) the stage each said last time (0 at the start)
    trackers: list[Tracker]  # the judges: only a decider that knows the scene (the oracle) reads them
    times_s: np.ndarray  # (k,) seconds since the instruction began


@dataclass
class Choice:
    stages: np.ndarray  # (k,) int
    subgoals: np.ndarray  # (k,) int, codebook index or STOP
    log_probs: np.ndarray  # (k,) float, 0 for a scripted decider
    # what an expert would have said instead (stages, subgoals), for DAgger-style relabelling; None: no expert
    labels: tuple[np.ndarray, np.ndarray] | None = None


class Decider:
    """Answers decisions for a wave of episodes; `begin` is told the wave's episodes before its first decision."""

    needs_images: bool = True

    def begin(self, episodes: Sequence[Episode], indices: np.ndarray) -> None:
        pass

    def __call__(self, inputs: DecisionInputs) -> Choice:
        raise NotImplementedError

    def observe(self, inputs: DecisionInputs, choice: Choice) -> None:
        """What was done at the decision just answered, when it was not this decider's answer (a labeller)."""


class OracleDecider(Decider):
    """The scripted expert: knows the layout and reads the judge's stage, never looks at the image."""

    needs_images = False

    def __init__(self) -> None:
        self._oracles: dict[int, Oracle] = {}

    def begin(self, episodes: Sequence[Episode], indices: np.ndarray) -> None:
        self._oracles = {int(i): Oracle(e.instruction, e.layout) for i, e in zip(indices, episodes, strict=True)}

    def __call__(self, inputs: DecisionInputs) -> Choice:
        subgoals = [
            self._oracles[int(e)].act(tracker, float(t))
            for e, tracker, t in zip(inputs.episodes, inputs.trackers, inputs.times_s, strict=True)
        ]
        stages = np.array([tracker.stage for tracker in inputs.trackers], dtype=np.int64)
        return Choice(stages=stages, subgoals=np.array(subgoals, dtype=np.int64), log_probs=np.zeros(len(stages)))

    def observe(self, inputs: DecisionInputs, choice: Choice) -> None:
        for e, tracker, subgoal in zip(inputs.episodes, inputs.trackers, choice.subgoals, strict=True):
            self._oracles[int(e)].observe(tracker.stage, int(subgoal))


class RelabelledDecider(Decider):
    """Acts as `actor` and records what `expert` would have said at the same inputs (DAgger: the learner visits
    its own states, the expert labels them)."""

    def __init__(self, actor: Decider, expert: Decider) -> None:
        self.actor, self.expert = actor, expert
        self.needs_images = actor.needs_images or expert.needs_images

    def begin(self, episodes: Sequence[Episode], indices: np.ndarray) -> None:
        self.actor.begin(episodes, indices)
        self.expert.begin(episodes, indices)

    def __call__(self, inputs: DecisionInputs) -> Choice:
        choice = self.actor(inputs)
        label = self.expert(inputs)
        self.expert.observe(inputs, choice)
        return Choice(choice.stages, choice.subgoals, choice.log_probs, labels=(label.stages, label.subgoals))


@dataclass
class Decisions:
    """Every decision of the played episodes, one row each (images as uint8 to keep thousands in memory)."""

    episode: list[np.ndarray] = field(default_factory=list)
    index: list[np.ndarray] = field(default_factory=list)  # decision number within its episode
    images: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    prev_stages: list[np.ndarray] = field(default_factory=list)
    stages: list[np.ndarray] = field(default_factory=list)
    subgoals: list[np.ndarray] = field(default_factory=list)
    log_probs: list[np.ndarray] = field(default_factory=list)
    unsafe: list[np.ndarray] = field(default_factory=list)
    label_stages: list[np.ndarray] = field(default_factory=list)
    label_subgoals: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The rows as arrays; fields nothing was recorded in (images of a blind decider, labels without an
        expert) are absent."""
        return {name: np.concatenate(parts) for name, parts in vars(self).items() if parts}


@dataclass
class Outcomes:
    success: np.ndarray  # (E,) bool
    fell: np.ndarray  # (E,) bool
    seconds: np.ndarray  # (E,) simulated seconds until the episode ended
    path_m: np.ndarray  # (E,) distance walked
    decisions: np.ndarray  # (E,) decisions taken
    reasons: list[str]
    trips: np.ndarray | None = None  # (E,) times the safety supervisor took the joints (None: unsupervised)
    fallback_s: np.ndarray | None = None  # (E,) simulated seconds the fallback drove the joints

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else 0.0


@dataclass
class Rates:
    """Calls of each loop in the simulated time [0, T) of the played waves: exactly the clock's rates when the
    loops are scheduled right."""

    calls: dict[str, int] = field(default_factory=lambda: {"planner": 0, "policy": 0, "pd": 0})
    simulated_s: float = 0.0

    @property
    def hz(self) -> dict[str, float]:
        return {name: count / self.simulated_s if self.simulated_s else 0.0 for name, count in self.calls.items()}


@dataclass(frozen=True)
class Safety:
    """The safety supervisor between the walking policy and the PD (`ogi.envs.supervised.SupervisedWalk`): limits
    on the measured signals, the fallback it switches to, and whether a calm robot is handed back to the policy
    (`recover`; its recurrent state starts over). The planner keeps deciding while a fallback drives; its commands
    reach the joints again once the policy has them back."""

    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    recover: bool = True


SafetyFn = Callable[[int, SafetyEvent], None]
"""on_safety(episode index, event): each switch of an episode's supervisor."""


def hierarchy_clock(sim_dt_s: float) -> ControlClock:
    """Planner 5 Hz, policy 50 Hz, PD at every physics step (1 kHz on the deployed model)."""
    return ControlClock(
        sim_dt_s=sim_dt_s, rates_hz={"planner": 1.0 / DECISION_S, "policy": POLICY_HZ, "pd": 1.0 / sim_dt_s}
    )


def _relative(origin: np.ndarray, pose: np.ndarray) -> list[np.ndarray]:
    """dx, dy (m) of `pose` in the frame of `origin` (k, 3), and cos, sin of the heading change."""
    c, s = np.cos(origin[:, 2]), np.sin(origin[:, 2])
    dx, dy = pose[:, 0] - origin[:, 0], pose[:, 1] - origin[:, 1]
    heading = pose[:, 2] - origin[:, 2]
    return [c * dx + s * dy, -s * dx + c * dy, np.cos(heading), np.sin(heading)]


def planner_state(
    start: np.ndarray, pose: np.ndarray, speed: np.ndarray, stage_pose: np.ndarray, stage_t_s: np.ndarray, t_s: float
) -> np.ndarray:
    """(k, STATE_DIM) odometry since the instruction began (`start`, (k, 3) x, y, yaw): dx, dy (m) in its frame,
    cos and sin of the heading change, speed (m/s); then since the decider last changed stage (`stage_pose` at
    `stage_t_s`): dx, dy, cos, sin, and the seconds since (at `t_s`) up to `STAGE_CLOCK_S`, over it."""
    stage_clock = np.minimum(t_s - stage_t_s, STAGE_CLOCK_S) / STAGE_CLOCK_S
    columns = [*_relative(start, pose), speed, *_relative(stage_pose, pose), stage_clock]
    return np.column_stack(columns).astype(np.float32)


def unsafe_subgoal(layout: Layout, instruction: Instruction, pose: Sequence[float], subgoal: int) -> bool:
    """Does the subgoal, held for `LOOKAHEAD_S`, bring the robot within `CLEARANCE_M` of an obstacle, or of an
    object the instruction does not walk to, while getting nearer to it?"""
    if subgoal == STOP:
        return False
    vx, vy, _ = subgoal_command(subgoal)
    if vx == 0.0 and vy == 0.0:
        return False
    x, y, yaw = (float(v) for v in pose)
    c, s = math.cos(yaw), math.sin(yaw)
    ahead = (x + (c * vx - s * vy) * LOOKAHEAD_S, y + (s * vx + c * vy) * LOOKAHEAD_S)
    for obstacle in layout.obstacles:
        there = obstacle_distance(ahead, obstacle)
        if there < CLEARANCE_M and there < obstacle_distance((x, y), obstacle):
            return True
    goals = {stage.object_index for stage in instruction.stages if isinstance(stage, GoTo)}
    for index, obj in enumerate(layout.objects):
        if index in goals:
            continue
        there = math.dist(ahead, obj.xy)
        if there < CLEARANCE_M + OBJECT_RADIUS_M and there < math.dist((x, y), obj.xy):
            return True
    return False


def play_episodes(
    env,
    walker: WalkerFn,
    episodes: Sequence[Episode],
    decide: Decider,
    *,
    keep: bool = True,
    on_decision: Callable[[DecisionInputs, Choice], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    rates: Rates | None = None,
    on_wave: Callable[[object], None] | None = None,
    max_seconds: float | None = None,
    capture_images: bool = False,
    safety: Safety | None = None,
    on_safety: SafetyFn | None = None,
) -> tuple[Outcomes, Decisions | None]:
    """Play `episodes` on `env` (an `ArenaVecEnv`) in waves of `env.num_envs`; returns outcomes and, with `keep`,
    every decision. `on_wave(env)` runs once each wave's layouts are in place, before its first step (e.g. to start
    a recording); `on_decision` sees each decision; `progress(done, total)` after each wave; `rates` accumulates
    the calls of each loop and the simulated time. `max_seconds` caps every instruction's time limit (for quick
    checks; a capped episode that runs out of time fails as a time-out). The camera is read at each decision when
    the decider needs it, when decisions are kept (a planner learns from them whoever decided) or with
    `capture_images` (e.g. for a recording). With `safety`, a supervisor per simulation sits between the walking
    policy and the PD; `on_safety(episode, event)` sees each of its switches, and the outcomes count the trips and
    the seconds in the fallback."""
    if not episodes:
        raise ValueError("play_episodes needs at least one episode")
    total = len(episodes)
    outcomes = Outcomes(
        success=np.zeros(total, dtype=bool),
        fell=np.zeros(total, dtype=bool),
        seconds=np.zeros(total),
        path_m=np.zeros(total),
        decisions=np.zeros(total, dtype=np.int64),
        reasons=[""] * total,
        trips=None if safety is None else np.zeros(total, dtype=np.int64),
        fallback_s=None if safety is None else np.zeros(total),
    )
    kept = Decisions() if keep else None
    rates = rates if rates is not None else Rates()
    capture = decide.needs_images or keep or capture_images
    for first in range(0, total, env.num_envs):
        wave = list(episodes[first : first + env.num_envs])
        indices = np.arange(first, first + len(wave))
        _play_wave(
            env,
            walker,
            wave,
            indices,
            decide,
            kept,
            on_decision,
            on_wave,
            outcomes,
            rates,
            max_seconds,
            capture,
            safety,
            on_safety,
        )
        if progress is not None:
            progress(first + len(wave), total)
    return outcomes, kept


def _play_wave(
    env, walker, wave, indices, decide, kept, on_decision, on_wave, outcomes, rates, max_seconds, capture, safety,
    on_safety,
):  # fmt: skip
    n, k = env.num_envs, len(wave)
    sim = env.walk.cfg.sim
    clock = hierarchy_clock(sim.sim_dt_s)
    if clock.period_ticks("policy") != sim.substeps:
        raise ValueError(
            f"the walking policy must run at {POLICY_HZ:g} Hz; the env's control step is {sim.ctrl_dt_s} s"
        )
    # idle simulations (a short last wave) stand in the first layout; they are never judged
    obs = env.set_layouts(np.arange(n), [e.layout for e in wave] + [wave[0].layout] * (n - k))
    if on_wave is not None:
        on_wave(env)
    supervised = None
    if safety is not None:
        supervised = SupervisedWalk(
            env.walk, safety.supervisor, safety.fallback, rearm=safety.recover, step_fn=env.step
        )
        supervised.restart(np.arange(n), obs)
        logged = np.zeros(k, dtype=np.int64)  # events of each episode's supervisor already passed on
    decide.begin(wave, indices)
    starts = np.array([e.layout.start for e in wave], dtype=np.float64)
    limits = np.array([time_limit_for(e.instruction) for e in wave])
    if max_seconds is not None:
        limits = np.minimum(limits, max_seconds)
    trackers = [Tracker(e.instruction, e.layout, e.layout.start, float(lim)) for e, lim in zip(wave, limits)]
    running = np.ones(k, dtype=bool)
    prev_stages = np.zeros(k, dtype=np.int64)
    stage_poses, stage_times = starts.copy(), np.zeros(k)  # where and when each decider last changed stage
    commands = np.zeros((n, 3))
    last_xy = starts[:, :2].copy()
    walked = np.zeros(k)
    decisions = np.zeros(k, dtype=np.int64)
    ended = np.zeros(k)
    reset_walker = np.ones(n, dtype=bool)
    while running.any():
        due = clock.due()
        t = clock.time_s
        decided = "planner" in due
        if decided:
            live = np.flatnonzero(running)
            pose = env.pose()[:k]
            inputs = DecisionInputs(
                episodes=indices[live],
                images=env.camera(live) if capture else None,
                states=planner_state(
                    starts[live], pose[live], env.speed()[live], stage_poses[live], stage_times[live], t
                ),
                texts=[wave[i].instruction.text for i in live],
                prev_stages=prev_stages[live].copy(),
                trackers=[trackers[i] for i in live],
                times_s=np.full(len(live), t),
            )
            choice = decide(inputs)
            if kept is not None:
                _keep(kept, inputs, choice, decisions[live], [wave[i] for i in live], pose[live])
            if on_decision is not None:
                on_decision(inputs, choice)
            decisions[live] += 1
            changed = live[np.asarray(choice.stages) != prev_stages[live]]
            stage_poses[changed], stage_times[changed] = pose[changed], t
            prev_stages[live] = choice.stages
            for row, i in enumerate(live):
                goal = int(choice.subgoals[row])
                if goal == STOP:
                    trackers[i].finish(t)
                    running[i], ended[i] = False, t
                    commands[i] = 0.0
                else:
                    commands[i] = subgoal_command(goal)
            obs = env.set_commands(commands)
            if not running.any():
                break  # a STOP at the end tick closes the run: no period of its own, so not counted
        if "policy" not in due:
            raise RuntimeError(f"the clock is at tick {clock.tick}, between policy steps")
        rates.calls["planner"] += decided
        rates.calls["policy"] += 1
        actions = walker(obs, reset_walker)
        reset_walker[:] = False
        if supervised is None:
            obs, *_ = env.step(actions)
        else:
            obs, *_, info = supervised.step(actions, obs=obs)
            reset_walker[info["rearmed"]] = True  # handed back: the policy's recurrent state starts over
            fallback = info["mode"][:k] != "policy"
            outcomes.fallback_s[indices[running & fallback]] += sim.ctrl_dt_s
            for i in np.flatnonzero(running):
                events = supervised.supervisors[i].events
                for event in events[logged[i] :]:
                    outcomes.trips[indices[i]] += event.from_mode == "policy"
                    if on_safety is not None:
                        on_safety(int(indices[i]), event)
                logged[i] = len(events)
        for _ in range(sim.substeps):  # the PD ran at each physics step of env.step
            rates.calls["pd"] += "pd" in clock.due()
            clock.advance()
        t = clock.time_s
        pose, speed, down = env.pose()[:k], env.speed()[:k], env.fell()[:k]
        walked[running] += np.linalg.norm(pose[running, :2] - last_xy[running], axis=1)
        last_xy = pose[:, :2].copy()
        for i in np.flatnonzero(running):
            trackers[i].update(tuple(pose[i]), float(speed[i]), bool(down[i]), t)
            if not trackers[i].done and t >= limits[i]:
                trackers[i].finish(t)
            if trackers[i].done:
                running[i], ended[i] = False, t
    rates.simulated_s += clock.time_s
    for i, tracker in enumerate(trackers):
        e = indices[i]
        outcomes.success[e] = tracker.success
        outcomes.fell[e] = tracker.reason == "fell"
        outcomes.seconds[e] = ended[i]
        outcomes.path_m[e] = walked[i]
        outcomes.decisions[e] = decisions[i]
        outcomes.reasons[e] = tracker.reason


def _keep(kept: Decisions, inputs: DecisionInputs, choice: Choice, index, episodes, poses) -> None:
    kept.episode.append(inputs.episodes.copy())
    kept.index.append(np.asarray(index, dtype=np.int64).copy())
    if inputs.images is not None:
        kept.images.append(np.round(np.clip(inputs.images, 0.0, 1.0) * 255).astype(np.uint8))
    kept.states.append(inputs.states)
    kept.prev_stages.append(inputs.prev_stages)
    kept.stages.append(np.asarray(choice.stages, dtype=np.int64))
    kept.subgoals.append(np.asarray(choice.subgoals, dtype=np.int64))
    kept.log_probs.append(np.asarray(choice.log_probs, dtype=np.float32))
    kept.unsafe.append(
        np.array(
            [unsafe_subgoal(e.layout, e.instruction, p, int(g)) for e, p, g in zip(episodes, poses, choice.subgoals)],
            dtype=bool,
        )
    )
    if choice.labels is not None:
        kept.label_stages.append(np.asarray(choice.labels[0], dtype=np.int64))
        kept.label_subgoals.append(np.asarray(choice.labels[1], dtype=np.int64))
