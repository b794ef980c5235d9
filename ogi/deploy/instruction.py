"""An instruction on the deployed robot: the 5 Hz planner over the runtime's 50 Hz policy and 1 kHz PD.

`InstructionLoop.tick(now)` runs at the policy's period beside the runtime. Once the runtime has stood the robot up
and handed it to the policy, the instruction begins: every tenth tick (200 ms) the decider (the planner, or the
scripted oracle where the scene is known) reads the bridge's newest head-camera image and odometry and answers a
stage and a subgoal, which becomes the runtime's walking command; STOP sets the command to zero and ends the
instruction. The planner reads exactly what it reads in training (`ogi.hierarchy.episodes`): the image, the
odometry since the instruction began and since it last changed stage, the instruction's words.

Where the scene is known (the sim bridge standing in an arena layout), a `Tracker` judges the instruction by its
programmatic criteria from the simulated robot's pose, as in training, and a fall ends it; on a real robot nothing
judges it and it ends at STOP or at its time limit. While the safety supervisor holds the joints, the planner keeps
deciding; its commands reach the joints again when the policy has them back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ogi.envs.instructions import Instruction, Tracker, time_limit_for
from ogi.envs.layout import MAX_STAGES, STOP, Layout, subgoal_command
from ogi.hierarchy.episodes import Choice, Decider, DecisionInputs, Episode, planner_state

DECISION_EVERY = 10  # policy ticks (50 Hz) per planner decision (5 Hz)


@dataclass
class Decision:
    time_s: float  # since the instruction began
    stage: int
    subgoal: int
    command: tuple[float, float, float]
    image_frame: int | None  # the camera frame it read (None: a decider that reads none)


@dataclass
class InstructionOutcome:
    text: str
    judged: bool  # a tracker with the scene judged it (the sim bridge in an arena)
    success: bool | None  # None when not judged
    reason: str  # success, timeout, incomplete, missed, fell, ... ("stopped" / "timeout" when not judged)
    seconds: float
    decisions: list[Decision] = field(default_factory=list)
    path_m: float = 0.0
    rates_hz: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "instruction": self.text,
            "judged": self.judged,
            "success": self.success,
            "outcome": self.reason,
            "seconds": round(self.seconds, 3),
            "decisions": len(self.decisions),
            "path_m": round(self.path_m, 3),
            "rates_hz": {k: round(v, 3) for k, v in self.rates_hz.items()},
        }


class InstructionLoop:
    """Drives `runtime` (an `ogi.deploy.runtime.Runtime`) through one instruction from `bridge`'s camera and
    odometry. `layout`: the scene, when known (the oracle needs it; with it a tracker judges the run).
    `fallen()`: whether the robot is down (the sim bridge's ground truth), else falls are not judged.
    `on_decision(decision)` sees each decision."""

    def __init__(
        self,
        runtime,
        bridge,
        instruction: Instruction,
        decider: Decider,
        *,
        layout: Layout | None = None,
        fallen: Callable[[], bool] | None = None,
        time_limit_s: float | None = None,
        on_decision: Callable[[Decision], None] | None = None,
    ):
        if decider.needs_images and not getattr(bridge, "has_head_camera", False):
            raise ValueError(
                "the planner reads the head camera and this bridge carries none: `ogi deploy --bridge sim "
                "--instruction` stands the simulated robot in an arena with the camera"
            )
        if layout is None and not decider.needs_images:
            raise ValueError("a decider that reads no image knows the scene: give the layout it decides in")
        self.runtime, self.bridge, self.instruction, self.decider = runtime, bridge, instruction, decider
        self.layout = layout
        self.fallen = fallen
        self.time_limit_s = time_limit_for(instruction) if time_limit_s is None else float(time_limit_s)
        self.on_decision = on_decision
        self.decisions: list[Decision] = []
        self.done = threading.Event()
        self.tracker: Tracker | None = None
        self._ticks = 0
        self._begun_s: float | None = None
        self._start = self._stage_pose = np.zeros(3)
        self._stage_s = 0.0
        self._prev_stage = 0
        self._last_xy: np.ndarray | None = None
        self._path_m = 0.0
        self._counts_at_start = (0, 0)
        self._ended_s = 0.0
        self._reason = ""

    @property
    def started(self) -> bool:
        return self._begun_s is not None

    def tick(self, now: float) -> None:
        """One policy period at controller time `now`: begin, judge, decide (every tenth tick), end."""
        if self.done.is_set() or self.runtime.phase != "running":
            return
        odometry = self.bridge.latest_odometry()
        if odometry is None:
            return
        pose, speed = odometry.pose, odometry.speed_mps
        if self._begun_s is None:
            self._begin(now, pose)
        t = now - self._begun_s
        self._path_m += float(np.linalg.norm(pose[:2] - self._last_xy))
        self._last_xy = pose[:2].copy()
        if self.tracker is not None and self._ticks > 0:
            fell = bool(self.fallen()) if self.fallen is not None else False
            self.tracker.update(tuple(pose), speed, fell, t)
            if self.tracker.done:
                self._end(t, self.tracker.reason)
                return
        if t >= self.time_limit_s:
            if self.tracker is not None:
                self.tracker.finish(t)
            self._end(t, self.tracker.reason if self.tracker is not None else "timeout")
            return
        if self._ticks % DECISION_EVERY == 0:
            self._decide(t, pose, speed)
        self._ticks += 1

    def _begin(self, now: float, pose: np.ndarray) -> None:
        self._begun_s = now
        self._start = self._stage_pose = pose.copy()
        self._last_xy = pose[:2].copy()
        self._counts_at_start = (self.runtime.policy_steps, self.runtime.pd_ticks)
        layout = self.layout if self.layout is not None else Layout(objects=())
        if self.layout is not None:
            self.tracker = Tracker(self.instruction, self.layout, tuple(pose), self.time_limit_s)
        self.decider.begin([Episode(layout, self.instruction)], np.array([0]))

    def _decide(self, t: float, pose: np.ndarray, speed: float) -> None:
        frame = self.bridge.latest_image() if self.decider.needs_images else None
        if self.decider.needs_images and frame is None:
            return  # no image yet: the walking command stays as it is
        inputs = DecisionInputs(
            episodes=np.array([0]),
            images=None if frame is None else frame.image[None],
            states=planner_state(
                self._start[None], pose[None], np.array([speed]), self._stage_pose[None], np.array([self._stage_s]), t
            ),
            texts=[self.instruction.text],
            prev_stages=np.array([self._prev_stage]),
            trackers=[self.tracker],
            times_s=np.array([t]),
        )
        choice: Choice = self.decider(inputs)
        stage, goal = int(choice.stages[0]), int(choice.subgoals[0])
        if stage != self._prev_stage:
            self._stage_pose, self._stage_s = pose.copy(), t
        self._prev_stage = stage
        command = (0.0, 0.0, 0.0) if goal == STOP else tuple(float(v) for v in subgoal_command(goal))
        self.runtime.set_command(command)
        decision = Decision(t, stage, goal, command, None if frame is None else frame.frame)
        self.decisions.append(decision)
        # a motor log, if the runtime keeps one, holds each decision and the image it was made on
        if frame is not None:
            self.runtime.log_image(frame.frame, frame.state_tick, frame.image)
        self.runtime.log_event(
            "planner",
            {
                "time_s": round(t, 3),
                "stage": stage,
                "subgoal": goal,
                "command": list(command),
                "tokens": [f"<act_{stage}>", f"<act_{MAX_STAGES + goal}>"],
                "image_frame": decision.image_frame,
            },
        )
        if self.on_decision is not None:
            self.on_decision(decision)
        if goal == STOP:
            if self.tracker is not None:
                self.tracker.finish(t)
            self._end(t, self.tracker.reason if self.tracker is not None else "stopped")

    def _end(self, t: float, reason: str) -> None:
        self.runtime.set_command((0.0, 0.0, 0.0))
        self._ended_s, self._reason = t, reason
        self.runtime.log_event("instruction_end", {"time_s": round(t, 3), "outcome": reason})
        self.done.set()

    def run(self, stop: threading.Event) -> None:
        """Tick at the runtime's policy period of controller time until the instruction ends or `stop` is set
        (a thread's body beside the runtime's own loops)."""
        period = self.runtime.policy_period_s
        next_s = self.runtime.now()
        while not (stop.is_set() or self.done.is_set()):
            now = self.runtime.now()
            if now < next_s:
                stop.wait((next_s - now) / self.runtime.cfg.time_scale)
                continue
            self.tick(now)
            next_s = max(next_s + period, now - period)  # after a stall, on, without a burst

    def outcome(self) -> InstructionOutcome:
        """The instruction as it stands (not begun: reason "not_started")."""
        if self._begun_s is None:
            return InstructionOutcome(self.instruction.text, self.tracker is not None, None, "not_started", 0.0)
        seconds = self._ended_s if self.done.is_set() else self._ticks * self.runtime.policy_period_s
        policy = self.runtime.policy_steps - self._counts_at_start[0]
        pd = self.runtime.pd_ticks - self._counts_at_start[1]
        # a STOP at the last tick closes the run: it has no period of its own (as `ogi.hierarchy.episodes` counts)
        planner = sum(d.time_s < seconds - 1e-9 for d in self.decisions)
        rates = {"planner": planner / seconds, "policy": policy / seconds, "pd": pd / seconds} if seconds > 0 else {}
        judged = self.tracker is not None
        return InstructionOutcome(
            text=self.instruction.text,
            judged=judged,
            success=self.tracker.success if judged and self.done.is_set() else None,
            reason=self._reason if self.done.is_set() else "running",
            seconds=seconds,
            decisions=list(self.decisions),
            path_m=self._path_m,
            rates_hz=rates,
        )
