"""One instruction, one robot, the three rates: the planner at 5 Hz, the walking policy at 50 Hz, the PD at 1 kHz
on the full-fidelity model, recorded to MCAP with every planner decision as an event and the camera image beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import ogi.policies
from ogi.envs.instructions import AbsentObjectError, Instruction, parse_instruction, sample_layout, time_limit_for
from ogi.envs.layout import MAX_STAGES, NUM_SUBGOALS, STOP, Layout, subgoal_command
from ogi.hierarchy.episodes import (
    Choice,
    Decider,
    DecisionInputs,
    Episode,
    OracleDecider,
    Outcomes,
    Rates,
    Safety,
    play_episodes,
)
from ogi.hierarchy.pipeline import SHIPPED_WALKER, make_arena

SHIPPED_PLANNER = Path(ogi.policies.__file__).parent / "pretrained" / "go2_planner" / "dagger1"
DEPLOY_SIM_DT_S = 0.001


@dataclass
class RunResult:
    instruction: Instruction
    layout: Layout
    layout_seed: int
    outcomes: Outcomes
    rates: Rates
    recording: Path | None
    safety_events: list[dict] = field(default_factory=list)
    """Each switch of the safety supervisor: time_s, from, to, cause (empty when unsupervised or never tripped)."""


def layout_for(text: str, seed: int, *, tries: int = 500) -> tuple[Layout, Instruction, int]:
    """The first random layout from `seed` on that holds what `text` names (an unknown object is tried on up to
    `tries` layouts); raises ValueError with the parser's message when the words themselves are not understood."""
    last_error: AbsentObjectError | None = None
    for offset in range(tries):
        layout = sample_layout(np.random.default_rng([seed + offset]))
        try:
            return layout, parse_instruction(text, layout), seed + offset
        except AbsentObjectError as error:
            last_error = error
    raise ValueError(f"no layout in {tries} tried holds what the instruction names: {last_error}")


def load_decider(
    planner: Path | None,
    *,
    oracle: bool,
    best_of_n: int = 1,
    verifier: Path | None = None,
    rewrite: bool = True,
) -> Decider:
    """The oracle, or a planner checkpoint (greedy; best-of-N with a verifier checkpoint). With `rewrite`, the
    planner reads each instruction as its own pretrained language model says it in training wording
    (`ogi.hierarchy.rewrite`), where the planner's lineage holds that model."""
    if oracle:
        return OracleDecider()
    import torch

    from ogi.hierarchy.planner_episodes import PlannerDecider
    from ogi.hierarchy.planner_verifier import load_verifier
    from ogi.hierarchy.rewrite import pretrained_rewriter
    from ogi.policies.planner import load_planner

    path = SHIPPED_PLANNER if planner is None else Path(planner)
    model = load_planner(path, expect_stage=("sft", "rl")).planner
    rewriter = pretrained_rewriter(path) if rewrite else None
    if best_of_n <= 1:
        return PlannerDecider.greedy(model, rewrite=rewriter)
    if verifier is None:
        raise ValueError("--best-of-n needs --verifier (a verifier checkpoint)")
    generator = torch.Generator().manual_seed(0)
    return PlannerDecider.best_of_n(model, load_verifier(Path(verifier)), best_of_n, generator, rewrite=rewriter)


def run_instruction(
    text: str,
    decider: Decider,
    *,
    layout_seed: int = 0,
    walker: Path = SHIPPED_WALKER,
    record: Path | None = None,
    sim_dt_s: float = DEPLOY_SIM_DT_S,
    on_decision: Callable[[DecisionInputs, Choice, float], None] | None = None,
    safety: Safety | None = None,
    on_safety: Callable[[dict], None] | None = None,
) -> RunResult:
    """Play `text` once in a random arena that holds what it names. With `record`, the run is written to MCAP:
    every step (replayable bit for bit), a `planner` event per decision (stage, subgoal, command, action tokens)
    and the head camera's image at each decision. `on_decision(inputs, choice, limit_s)` sees each decision.
    With `safety`, the supervisor sits under the walking policy; each of its switches is a `safety` event in the
    recording and goes to `on_safety(event)` as a dict (time_s, from, to, cause)."""
    layout, instruction, seed = layout_for(text, layout_seed)
    env, walk_fn = make_arena(walker, 1, sim_dt_s, seed=layout_seed)
    recorder = None
    limit = time_limit_for(instruction)

    def on_wave(_env) -> None:
        nonlocal recorder
        if record is not None:
            from ogi.replay.recorder import Recorder

            recorder = Recorder(
                env.walk,
                record,
                meta={"instruction": instruction.text, "layout_seed": seed, "stages": instruction.kind},
            )

    def decided(inputs: DecisionInputs, choice: Choice) -> None:
        if recorder is not None:
            stage, subgoal = int(choice.stages[0]), int(choice.subgoals[0])
            command = [0.0, 0.0, 0.0] if subgoal == STOP else list(subgoal_command(subgoal))
            recorder.add_event(
                "planner",
                sim=0,
                cause="stop" if subgoal == STOP else "subgoal",
                data={
                    "time_s": round(float(inputs.times_s[0]), 3),
                    "stage": stage,
                    "subgoal": subgoal,
                    "command": command,
                    "tokens": [f"<act_{stage}>", f"<act_{MAX_STAGES + subgoal}>"],
                    "num_subgoals": NUM_SUBGOALS,
                },
            )
            if inputs.images is not None:
                recorder.add_image(inputs.images[0], sim=0)
        if on_decision is not None:
            on_decision(inputs, choice, limit)

    events: list[dict] = []

    def switched(_episode: int, event) -> None:
        data = {"time_s": round(event.time_s, 3), "from": event.from_mode, "to": event.to_mode, "cause": event.cause}
        events.append(data)
        if recorder is not None:
            # the supervisor judged the signals before the step just recorded: the event belongs to that step
            recorder.add_event("safety", sim=0, cause=event.cause, data=data, step=max(0, recorder.step_index - 1))
        if on_safety is not None:
            on_safety(data)

    rates = Rates()
    try:
        outcomes, _ = play_episodes(
            env,
            walk_fn,
            [Episode(layout, instruction)],
            decider,
            keep=False,
            on_decision=decided,
            rates=rates,
            on_wave=on_wave,
            capture_images=record is not None,  # the recording shows what the robot saw, whoever decides
            safety=safety,
            on_safety=switched,
        )
    finally:
        if recorder is not None:
            recorder.close()
        env.close()
    return RunResult(instruction, layout, seed, outcomes, rates, record, events)
