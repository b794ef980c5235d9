"""A seeded grammar of robot instructions with a programmatic mapping to canonical plans, and its verifier.

An instruction such as ``walk forward two meters then turn left`` maps to the plan ``forward 2 ; left 90``.
From the grammar come the pretraining documents, the SFT demonstrations (instruction, plan), the preference pairs
(canonical plan preferred over a corrupted one) and the verifier that scores any response against the instruction.
Everything is a pure function of the seed; nothing is downloaded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

Step = tuple[str, int]
"""One plan step: an operation and its argument (meters for moves, degrees for turns, 0 for postures)."""

MOVE_OPS = ("forward", "backward", "side_left", "side_right")
TURN_OPS = ("left", "right")
POSTURE_OPS = ("stop", "sit", "stand")
PLAN_OPS = MOVE_OPS + TURN_OPS + POSTURE_OPS
DISTANCES_M = (1, 2, 3, 4, 5)
ANGLES_DEG = (45, 90, 180)
DISALLOWED_WORDS = ("jump", "sprint")
"""Words a plan must never contain: the planner's rule-based safety penalty looks for these."""

_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 45: "forty-five", 90: "ninety"}
_MOVE_VERBS = ("walk", "move", "go", "step")
_CONNECTIVES = ("then", "and then", ", then", "after that", "and")
_STEP_SEPARATOR = " ; "


@dataclass(frozen=True, kw_only=True)
class Demonstration:
    """An instruction (the prompt) and its canonical plan (the response)."""

    prompt: str
    response: str


@dataclass(frozen=True, kw_only=True)
class PreferencePair:
    """A prompt with a preferred response ``chosen`` (y_w) and a worse one ``rejected`` (y_l)."""

    prompt: str
    chosen: str
    rejected: str


def plan_text(plan: list[Step] | tuple[Step, ...]) -> str:
    """The canonical response for a plan, e.g. ``forward 2 ; left 90 ; stop``."""
    return _STEP_SEPARATOR.join(op if op in POSTURE_OPS else f"{op} {arg}" for op, arg in plan)


def parse_plan(response: str) -> tuple[Step, ...] | None:
    """The plan a response spells, or None when it is not a well-formed plan."""
    steps = []
    for chunk in response.split(";"):
        words = chunk.split()
        if len(words) == 1 and words[0] in POSTURE_OPS:
            steps.append((words[0], 0))
        elif len(words) == 2 and words[0] in MOVE_OPS + TURN_OPS and words[1].isdigit():
            steps.append((words[0], int(words[1])))
        else:
            return None
    return tuple(steps)


def _number(value: int, rng: random.Random) -> str:
    return _NUMBER_WORDS[value] if value in _NUMBER_WORDS and rng.random() < 0.5 else str(value)


def _random_step(rng: random.Random) -> tuple[Step, str]:
    kind = rng.random()
    if kind < 0.45:
        op = rng.choice(("forward", "backward"))
        meters = rng.choice(DISTANCES_M)
        unit = "meter" if meters == 1 else "meters"
        return (op, meters), f"{rng.choice(_MOVE_VERBS)} {op} {_number(meters, rng)} {unit}"
    if kind < 0.6:
        side = rng.choice(("left", "right"))
        meters = rng.choice(DISTANCES_M)
        unit = "meter" if meters == 1 else "meters"
        return (f"side_{side}", meters), f"sidestep {side} {_number(meters, rng)} {unit}"
    if kind < 0.9:
        side = rng.choice(TURN_OPS)
        degrees = rng.choice(ANGLES_DEG)
        if degrees == 90 and rng.random() < 0.5:
            return (side, 90), f"turn {side}"
        if degrees == 180 and rng.random() < 0.5:
            return (side, 180), f"turn around to the {side}"
        return (side, degrees), f"turn {side} {_number(degrees, rng)} degrees"
    op = rng.choice(POSTURE_OPS)
    return (op, 0), {"stop": rng.choice(("stop", "halt")), "sit": "sit down", "stand": "stand up"}[op]


def random_demonstration(rng: random.Random, max_steps: int = 3) -> Demonstration:
    """One instruction of 1..``max_steps`` steps joined by connectives, and its canonical plan."""
    plan, phrases = [], []
    for index in range(rng.randint(1, max_steps)):
        step, phrase = _random_step(rng)
        plan.append(step)
        phrases.append(phrase if index == 0 else f"{rng.choice(_CONNECTIVES)} {phrase}")
    return Demonstration(prompt=" ".join(phrases).replace(" ,", ","), response=plan_text(plan))


def plan_for(prompt: str) -> tuple[Step, ...] | None:
    """The canonical plan of a generated instruction, by re-parsing it with the grammar (None if it is not one)."""
    words = prompt.replace(",", " , ").split()
    plan: list[Step] = []
    index = 0
    values = {word: number for number, word in _NUMBER_WORDS.items()}

    def number(word: str) -> int | None:
        return int(word) if word.isdigit() else values.get(word)

    while index < len(words):
        while index < len(words) and words[index] in (",", "then", "and", "after", "that"):
            index += 1
        rest = words[index:]
        if not rest:
            break
        if rest[0] in _MOVE_VERBS and len(rest) >= 4 and rest[1] in ("forward", "backward"):
            plan.append((rest[1], number(rest[2]) or 0))
            index += 4
        elif rest[0] == "sidestep" and len(rest) >= 4:
            plan.append((f"side_{rest[1]}", number(rest[2]) or 0))
            index += 4
        elif rest[0] == "turn" and len(rest) >= 2 and rest[1] == "around":
            plan.append((rest[4], 180))
            index += 5
        elif rest[0] == "turn" and len(rest) >= 4 and rest[3] == "degrees":
            plan.append((rest[1], number(rest[2]) or 0))
            index += 4
        elif rest[0] == "turn" and len(rest) >= 2:
            plan.append((rest[1], 90))
            index += 2
        elif rest[0] in ("stop", "halt"):
            plan.append(("stop", 0))
            index += 1
        elif rest[0] in ("sit", "stand") and len(rest) >= 2:
            plan.append((rest[0], 0))
            index += 2
        else:
            return None
    return tuple(plan) if plan else None


def plan_score(prompt: str, response: str) -> float:
    """Programmatic reward in [0, 1]: 1 for the canonical plan, partial credit per aligned step, 0 if malformed.

    Each aligned step earns 1/2 for the operation and 1/2 for the argument; the sum is divided by the longer plan's
    length, so missing or extra steps cost their share.
    """
    target = plan_for(prompt)
    produced = parse_plan(response)
    if target is None or produced is None:
        return 0.0
    credit = sum(0.5 * (a[0] == b[0]) + 0.5 * (a[0] == b[0] and a[1] == b[1]) for a, b in zip(target, produced))
    return credit / max(len(target), len(produced))


def is_correct(prompt: str, response: str) -> bool:
    """The verifier: does the response spell exactly the instruction's plan?"""
    target = plan_for(prompt)
    return target is not None and parse_plan(response) == target


def corrupt_plan(plan: tuple[Step, ...], rng: random.Random) -> tuple[Step, ...]:
    """A plausible wrong plan: a flipped direction, changed number, dropped, added or reordered step."""
    flips = {
        "forward": "backward",
        "backward": "forward",
        "left": "right",
        "right": "left",
        "side_left": "side_right",
        "side_right": "side_left",
        "sit": "stand",
        "stand": "sit",
        "stop": "sit",
    }
    while True:
        steps = list(plan)
        index = rng.randrange(len(steps))
        op, arg = steps[index]
        kind = rng.randrange(5)
        if kind == 0:
            steps[index] = (flips[op], arg)
        elif kind == 1 and op in MOVE_OPS:
            steps[index] = (op, rng.choice([d for d in DISTANCES_M if d != arg]))
        elif kind == 1 and op in TURN_OPS:
            steps[index] = (op, rng.choice([a for a in ANGLES_DEG if a != arg]))
        elif kind == 2 and len(steps) > 1:
            del steps[index]
        elif kind == 3:
            steps.insert(rng.randrange(len(steps) + 1), _random_step(rng)[0])
        elif kind == 4 and len(steps) > 1:
            steps.reverse()
        if tuple(steps) != plan:
            return tuple(steps)


def demonstrations(count: int, seed: int, max_steps: int = 3) -> list[Demonstration]:
    """``count`` demonstrations drawn from the grammar with ``seed`` (prompts may repeat)."""
    rng = random.Random(seed)
    return [random_demonstration(rng, max_steps) for _ in range(count)]


def split_demonstrations(
    count_train: int, count_heldout: int, seed: int
) -> tuple[list[Demonstration], list[Demonstration]]:
    """Train and held-out demonstrations with no held-out prompt seen in training."""
    train = demonstrations(count_train, seed)
    seen = {demo.prompt for demo in train}
    rng = random.Random(seed + 1_000_003)
    heldout: list[Demonstration] = []
    for _ in range(100 * count_heldout):
        if len(heldout) == count_heldout:
            break
        demo = random_demonstration(rng)
        if demo.prompt not in seen:
            seen.add(demo.prompt)
            heldout.append(demo)
    return train, heldout


def preference_pairs(demos: list[Demonstration], seed: int) -> list[PreferencePair]:
    """One pair per demonstration: its canonical plan (y_w) against a corrupted plan (y_l)."""
    rng = random.Random(seed)
    pairs = []
    for demo in demos:
        plan = parse_plan(demo.response)
        assert plan is not None, demo.response  # canonical plans always parse
        pairs.append(
            PreferencePair(prompt=demo.prompt, chosen=demo.response, rejected=plan_text(corrupt_plan(plan, rng)))
        )
    return pairs


def pretraining_documents(count: int, seed: int) -> list[str]:
    """Unlabelled text: instructions, plans, narrations, and some instruction/plan pairs written out as prose."""
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        demo = random_demonstration(rng)
        kind = rng.random()
        if kind < 0.3:
            documents.append(demo.prompt)
        elif kind < 0.5:
            documents.append(demo.response)
        elif kind < 0.8:
            documents.append(f"the operator said : {demo.prompt} . the plan was : {demo.response} .")
        elif kind < 0.95:
            documents.append(f"the robot was told to {demo.prompt} and it did .")
        else:
            documents.append(f"a walking robot must never {rng.choice(DISALLOWED_WORDS)} near people .")
    return documents
