"""Instructions for the 5 Hz planner: arenas to give them in, their words and compiled stages, a held-out split,
pretraining text, and the judge of one episode (`Tracker`).

An instruction compiles to at most `MAX_STAGES` stages, done in order. Each stage is measured in its own frame: the
first in the start pose, a later one where the stage before it should have ended: a `Move`'s target point (heading
unchanged), a `Turn`'s place turned by its angle, and after any other stage the robot's pose when the judge saw that
stage done. Nominal frames keep errors from adding up ("turn left then walk forward two meters" goes two meters
along the commanded heading, not along the heading at which the turn was judged close enough).

The held-out split differs from the training split by construction, in one of three ways per instruction
(`Instruction.novelty`): a paraphrase template no training instruction uses, a target in `HELDOUT_TARGETS` (always
named by colour and shape), or a composition in `HELDOUT_COMPOSITIONS`. Texts of the two splits never coincide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ogi.envs.layout import ARENA_HALF_M, COLOURS, MAX_STAGES, SHAPES, Layout, Obstacle, SceneObject, wrap_angle

REACH_M = 0.9  # a GoTo is done within this distance of the object's centre
MOVE_TOLERANCE_M = 0.35
TURN_TOLERANCE_RAD = math.radians(20.0)
STOPPED_MPS = 0.15  # a final GoTo needs the robot slower than this
AROUND_SWEEP_RAD = math.radians(150.0)
AROUND_MIN_DISTANCE_M = 0.45  # from the circled object's centre
AROUND_RADIUS_M = 0.8  # the circle an Around is planned on (sampling checks it is clear)
STOP_RADIUS_M = 0.3
STOP_HOLD_S = 1.0
SPLITS = ("train", "heldout")
KINDS = ("move", "turn", "goto", "around", "stop")
SIDES = ("left", "right")

# colour-shape pairs never named as a target by a training instruction (they may stand in training arenas)
HELDOUT_TARGETS = frozenset({("red", "ball"), ("blue", "pillar"), ("yellow", "cone"), ("green", "box")})
TRAIN_COMPOSITIONS = (
    ("move", "turn"),
    ("turn", "move"),
    ("move", "move"),
    ("goto", "turn"),
    ("turn", "goto"),
    ("around", "goto"),
    ("move", "stop"),
)
HELDOUT_COMPOSITIONS = (("goto", "move"), ("move", "goto"), ("around", "stop"))


# ---------------------------------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class Move:
    """Walk to a point given in the stage's frame (m): forward 2 m is Move(2, 0), sidestep left 1 m Move(0, 1)."""

    dx_m: float
    dy_m: float


@dataclass(frozen=True)
class Turn:
    """Turn in place by an angle (rad, + left), counted cumulatively; `either_way` accepts -angle too."""

    angle_rad: float
    either_way: bool = False


@dataclass(frozen=True)
class GoTo:
    """Walk to within `REACH_M` of an object; when last, also come to a stop."""

    object_index: int


@dataclass(frozen=True)
class Around:
    """Pass around an object: the bearing of the robot about it sweeps >= 150 deg, never nearer than 0.45 m.

    `side` is the side of the object the robot goes by, as seen on the way to it: "left" keeps the object on the
    robot's right (clockwise seen from above), "right" counter-clockwise; None either."""

    object_index: int
    side: str | None = None

    def __post_init__(self) -> None:
        if self.side not in (None, *SIDES):
            raise ValueError(f"Around.side must be None, 'left' or 'right', got {self.side!r}")

    @property
    def sense(self) -> int:
        """+1 counter-clockwise, -1 clockwise, 0 either."""
        return {None: 0, "left": -1, "right": 1}[self.side]


@dataclass(frozen=True)
class Stop:
    """Stand still: stay within 0.3 m of where the stage began for 1 s."""


Stage = Move | Turn | GoTo | Around | Stop
Pose = tuple[float, float, float]


def stage_kind(stage: Stage) -> str:
    return {Move: "move", Turn: "turn", GoTo: "goto", Around: "around", Stop: "stop"}[type(stage)]


def move_target(stage: Move, frame: Sequence[float]) -> tuple[float, float]:
    """World point (m) a Move in `frame` (x, y, yaw) ends at: p = frame_xy + R(frame_yaw) (dx, dy)."""
    c, s = math.cos(frame[2]), math.sin(frame[2])
    return (frame[0] + c * stage.dx_m - s * stage.dy_m, frame[1] + s * stage.dx_m + c * stage.dy_m)


def next_frame(stage: Stage, frame: Sequence[float], pose: Sequence[float]) -> Pose:
    """The frame of the stage after `stage`, which ran in `frame` and was seen done at `pose`."""
    if isinstance(stage, Move):
        return (*move_target(stage, frame), float(frame[2]))
    if isinstance(stage, Turn):
        return (float(frame[0]), float(frame[1]), float(frame[2]) + stage.angle_rad)
    return (float(pose[0]), float(pose[1]), float(pose[2]))


def turn_targets(stage: Turn, frame: Sequence[float], yaw_at_start: float) -> tuple[float, ...]:
    """Cumulative yaw changes (rad) from the stage's start that complete the turn: its angle from the frame's
    heading, corrected by where the robot actually pointed when the stage began."""
    offset = wrap_angle(frame[2] - yaw_at_start)
    if stage.either_way:
        return (stage.angle_rad + offset, -stage.angle_rad + offset)
    return (stage.angle_rad + offset,)


def obstacle_distance(xy: Sequence[float], obstacle: Obstacle) -> float:
    """Distance (m) from a point to a block's edge on the ground; negative inside."""
    c, s = math.cos(obstacle.yaw), math.sin(obstacle.yaw)
    dx, dy = xy[0] - obstacle.xy[0], xy[1] - obstacle.xy[1]
    lx = abs(c * dx + s * dy) - obstacle.half_size[0]
    ly = abs(-s * dx + c * dy) - obstacle.half_size[1]
    return math.hypot(max(lx, 0.0), max(ly, 0.0)) + min(max(lx, ly), 0.0)


def around_arc_clear(layout: Layout, index: int, from_xy: Sequence[float], sense: int) -> bool:
    """Is the circle of `AROUND_RADIUS_M` about object `index`, from the bearing of `from_xy` on 200 deg in `sense`
    (+1 counter-clockwise), inside the arena and clear of blocks (0.55 m) and other objects' centres (0.8 m)?"""
    cx, cy = layout.objects[index].xy
    start = math.atan2(from_xy[1] - cy, from_xy[0] - cx)
    for step in range(15):
        bearing = start + sense * math.radians(200.0) * step / 14
        point = (cx + AROUND_RADIUS_M * math.cos(bearing), cy + AROUND_RADIUS_M * math.sin(bearing))
        if max(abs(point[0]), abs(point[1])) > ARENA_HALF_M - 0.2:
            return False
        if any(obstacle_distance(point, o) < 0.55 for o in layout.obstacles):
            return False
        if any(math.dist(point, o.xy) < 0.8 for k, o in enumerate(layout.objects) if k != index):
            return False
    return True


# ---------------------------------------------------------------------------------------------------- layouts


def sample_layout(
    rng: np.random.Generator,
    *,
    n_objects: tuple[int, int] = (3, 5),
    n_obstacles: tuple[int, int] = (0, 2),
    max_per_shape: int = 2,
) -> Layout:
    """A random arena: `n_objects` (inclusive range) distinct colour-shape pairs, at most `max_per_shape` of a shape
    (the arena's slots), 1.5..3.6 m from the start, >= 1 m from each other and from blocks, inside
    `ARENA_HALF_M - 0.4`; `n_obstacles` blocks of half sizes 0.15..0.35 m, >= 0.8 m from the start and 1 m apart;
    the robot starts at the origin facing a random yaw."""
    if not 1 <= n_objects[0] <= n_objects[1] <= max_per_shape * len(SHAPES):
        raise ValueError(f"n_objects {n_objects} must be a range within 1..{max_per_shape * len(SHAPES)}")
    if not 0 <= n_obstacles[0] <= n_obstacles[1] <= 8:
        raise ValueError(f"n_obstacles {n_obstacles} must be a range within 0..8")
    bound = ARENA_HALF_M - 0.4
    while True:
        count = int(rng.integers(n_objects[0], n_objects[1] + 1))
        blocks: list[Obstacle] = []
        for _ in range(int(rng.integers(n_obstacles[0], n_obstacles[1] + 1))):
            for _ in range(50):
                angle, radius = rng.uniform(-math.pi, math.pi), rng.uniform(1.0, 3.2)
                half = rng.uniform(0.15, 0.35, size=2)
                block = Obstacle(
                    xy=(radius * math.cos(angle), radius * math.sin(angle)),
                    half_size=(float(half[0]), float(half[1])),
                    yaw=float(rng.uniform(0.0, math.pi)),
                )
                reach = math.hypot(*block.half_size)
                if (
                    max(abs(block.xy[0]), abs(block.xy[1])) + reach <= bound
                    and obstacle_distance((0.0, 0.0), block) >= 0.8
                    and all(math.dist(block.xy, b.xy) - reach - math.hypot(*b.half_size) >= 1.0 for b in blocks)
                ):
                    blocks.append(block)
                    break
        pairs = [(c, s) for c in COLOURS for s in SHAPES]
        chosen: list[tuple[str, str]] = []
        for k in rng.permutation(len(pairs)):
            if len(chosen) < count and sum(s == pairs[k][1] for _, s in chosen) < max_per_shape:
                chosen.append(pairs[k])
        objects: list[SceneObject] = []
        for colour, shape in chosen:
            for _ in range(100):
                angle, radius = rng.uniform(-math.pi, math.pi), rng.uniform(1.5, 3.6)
                xy = (radius * math.cos(angle), radius * math.sin(angle))
                if (
                    max(abs(xy[0]), abs(xy[1])) <= bound
                    and all(math.dist(xy, o.xy) >= 1.0 for o in objects)
                    and all(obstacle_distance(xy, b) >= 1.0 for b in blocks)
                ):
                    objects.append(SceneObject(colour, shape, xy))
                    break
        if len(objects) == count:
            start = (0.0, 0.0, float(rng.uniform(-math.pi, math.pi)))
            return Layout(objects=tuple(objects), obstacles=tuple(blocks), start=start)


# ---------------------------------------------------------------------------------------------------- words


@dataclass(frozen=True)
class _Template:
    pattern: str  # placeholders: {amount} {dir} {angle} {obj} {side}
    kind: str
    split: str
    direction: str = ""  # move: forward, back, left, right
    angle_deg: int = 0  # turn without {angle}: its fixed angle
    either_way: bool = False
    last_only: bool = False
    same_as: str = ""  # held-out: the training template it paraphrases
    gloss: tuple[str, str] = ("", "")  # held-out: (its words, the training words they mean)


_T, _H = "train", "heldout"
TEMPLATES: tuple[_Template, ...] = (
    _Template("walk forward {amount}", "move", _T, "forward"),
    _Template("go forward {amount}", "move", _T, "forward"),
    _Template("move forward {amount}", "move", _T, "forward"),
    _Template("go back {amount}", "move", _T, "back"),
    _Template("walk backward {amount}", "move", _T, "back"),
    _Template("step back {amount}", "move", _T, "back"),
    _Template("sidestep left {amount}", "move", _T, "left"),
    _Template("sidestep right {amount}", "move", _T, "right"),
    _Template("step to the left {amount}", "move", _T, "left"),
    _Template("step to the right {amount}", "move", _T, "right"),
    _Template("turn {dir} {angle} degrees", "turn", _T),
    _Template("turn {dir} by {angle} degrees", "turn", _T),
    _Template("turn {dir}", "turn", _T, angle_deg=90),
    _Template("turn around", "turn", _T, angle_deg=180, either_way=True),
    _Template("go to the {obj}", "goto", _T),
    _Template("walk to the {obj}", "goto", _T),
    _Template("move to the {obj}", "goto", _T),
    _Template("walk over to the {obj}", "goto", _T),
    _Template("stop at the {obj}", "goto", _T, last_only=True),
    _Template("go around the {obj}", "around", _T),
    _Template("walk around the {obj}", "around", _T),
    _Template("go around the {obj} on the {side}", "around", _T),
    _Template("pass the {obj} on the {side}", "around", _T),
    _Template("stop", "stop", _T),
    _Template("stand still", "stop", _T),
    _Template(
        "advance {amount}", "move", _H, "forward", same_as="walk forward {amount}", gloss=("advance", "walk forward")
    ),
    _Template(
        "proceed forward {amount}", "move", _H, "forward", same_as="go forward {amount}", gloss=("proceed", "go")
    ),
    _Template("back up {amount}", "move", _H, "back", same_as="go back {amount}", gloss=("back up", "go back")),
    _Template("slide left {amount}", "move", _H, "left", same_as="sidestep left {amount}", gloss=("slide", "sidestep")),
    _Template(
        "slide right {amount}", "move", _H, "right", same_as="sidestep right {amount}", gloss=("slide", "sidestep")
    ),
    _Template(
        "rotate {dir} {angle} degrees", "turn", _H, same_as="turn {dir} {angle} degrees", gloss=("rotate", "turn")
    ),
    _Template("rotate {dir}", "turn", _H, angle_deg=90, same_as="turn {dir}", gloss=("rotate", "turn")),
    _Template(
        "face the opposite way",
        "turn",
        _H,
        angle_deg=180,
        either_way=True,
        same_as="turn around",
        gloss=("face the opposite way", "turn around"),
    ),
    _Template("head to the {obj}", "goto", _H, same_as="go to the {obj}", gloss=("head to", "go to")),
    _Template("approach the {obj}", "goto", _H, same_as="go to the {obj}", gloss=("approach", "go to")),
    _Template(
        "make your way to the {obj}", "goto", _H, same_as="walk to the {obj}", gloss=("make your way to", "walk to")
    ),
    _Template("navigate to the {obj}", "goto", _H, same_as="go to the {obj}", gloss=("navigate to", "go to")),
    _Template("circle the {obj}", "around", _H, same_as="go around the {obj}", gloss=("circle", "go around")),
    _Template("loop around the {obj}", "around", _H, same_as="walk around the {obj}", gloss=("loop", "walk")),
    _Template(
        "circle the {obj} on the {side}",
        "around",
        _H,
        same_as="go around the {obj} on the {side}",
        gloss=("circle", "go around"),
    ),
    _Template("halt", "stop", _H, same_as="stop", gloss=("halt", "stop")),
    _Template("freeze", "stop", _H, same_as="stand still", gloss=("freeze", "stand still")),
)
_BY_PATTERN = {t.pattern: t for t in TEMPLATES}
CONNECTIVES = ("then", "and then", "and")
MOVE_DISTANCES_M = {"forward": (1, 2, 3), "back": (1, 2), "left": (1, 2), "right": (1, 2)}
_DIRECTION_XY = {"forward": (1.0, 0.0), "back": (-1.0, 0.0), "left": (0.0, 1.0), "right": (0.0, -1.0)}
TURN_ANGLES_DEG = (45, 90, 180)
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 45: "forty five", 90: "ninety", 180: "one hundred eighty"}


def _number(rng: np.random.Generator, value: int) -> str:
    return _NUMBER_WORDS[value] if rng.random() < 0.5 else str(value)


def _object_names(layout: Layout, index: int, full_only: bool) -> list[str]:
    """Noun phrases that pick out object `index` alone: colour and shape, or either when unique in the layout."""
    obj = layout.objects[index]
    names = [obj.name]
    if not full_only:
        if layout.find(None, obj.shape) == index:
            names.append(obj.shape)
        if layout.find(obj.colour, None) == index:
            names.append(f"{obj.colour} one")
    return names


@dataclass(frozen=True)
class Instruction:
    """A text, its compiled stages, its split, and `kind`: the stages' kinds joined by "+" (e.g. "goto+turn").

    `novelty` says how a held-out instruction differs from training ("template", "target" or "composition";
    "" in training) and `templates` lists the templates its text was written from."""

    text: str
    stages: tuple[Stage, ...]
    split: str
    kind: str
    novelty: str = ""
    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.stages) <= MAX_STAGES:
            raise ValueError(f"an instruction has 1..{MAX_STAGES} stages, got {len(self.stages)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")

    @property
    def targets(self) -> tuple[int, ...]:
        """Indices of the objects the instruction names, in order."""
        return tuple(s.object_index for s in self.stages if isinstance(s, GoTo | Around))


def _predicted_end(stage: Stage, frame: Pose, layout: Layout) -> Pose:
    """Roughly where a stage leaves the robot (for checking what may follow it)."""
    if isinstance(stage, GoTo):
        ox, oy = layout.objects[stage.object_index].xy
        heading = math.atan2(oy - frame[1], ox - frame[0])
        return (ox - 0.8 * math.cos(heading), oy - 0.8 * math.sin(heading), heading)
    return next_frame(stage, frame, frame)


def _move_clear(layout: Layout, start: Pose, end: tuple[float, float], skip: int | None) -> bool:
    """Is the straight walk from `start` to `end` inside the arena and clear of blocks and objects?"""
    if max(abs(end[0]), abs(end[1])) > ARENA_HALF_M - 0.5:
        return False
    for step in range(11):
        point = (start[0] + (end[0] - start[0]) * step / 10, start[1] + (end[1] - start[1]) * step / 10)
        if any(obstacle_distance(point, o) < 0.7 for o in layout.obstacles):
            return False
        if any(math.dist(point, o.xy) < 0.8 for k, o in enumerate(layout.objects) if k != skip):
            return False
    return skip is None or math.dist(end, layout.objects[skip].xy) >= 1.0


def _sample_clause(
    rng: np.random.Generator,
    template: _Template,
    layout: Layout,
    frame: Pose,
    targets: Sequence[int],
    full_names: bool,
    after: Stage | None,
) -> tuple[str, Stage] | None:
    """Text and stage of one clause from `template`, or None when the layout does not allow it here."""
    fields: dict[str, str] = {}
    if template.kind == "move":
        distance = int(rng.choice(MOVE_DISTANCES_M[template.direction]))
        ux, uy = _DIRECTION_XY[template.direction]
        stage: Stage = Move(ux * distance, uy * distance)
        skip = after.object_index if isinstance(after, GoTo) else None
        if skip is not None and template.direction == "forward":
            return None
        if not _move_clear(layout, frame, move_target(stage, frame), skip):
            return None
        unit = "meter" if distance == 1 else "meters"
        fields["amount"] = f"{_number(rng, distance)} {unit}"
    elif template.kind == "turn":
        direction = str(rng.choice(SIDES))
        angle = int(rng.choice(TURN_ANGLES_DEG)) if "{angle}" in template.pattern else template.angle_deg
        sign = 1.0 if direction == "left" or template.either_way else -1.0
        stage = Turn(sign * math.radians(angle), template.either_way)
        fields["dir"], fields["angle"] = direction, _number(rng, angle)
    elif template.kind in ("goto", "around"):
        if not targets:
            return None
        index = int(rng.choice(targets))
        if template.kind == "goto":
            stage = GoTo(index)
        else:
            side = str(rng.choice(SIDES)) if "{side}" in template.pattern else None
            stage = Around(index, side)
            senses = (stage.sense,) if side else (1, -1)
            if not any(around_arc_clear(layout, index, frame[:2], s) for s in senses):
                return None
            fields["side"] = side or ""
        names = _object_names(layout, index, full_names)
        fields["obj"] = names[int(rng.integers(len(names)))]
    else:
        stage = Stop()
    return template.pattern.format(**fields), stage


def _templates(kind: str, split: str, last: bool) -> list[_Template]:
    return [t for t in TEMPLATES if t.kind == kind and t.split == split and (last or not t.last_only)]


def sample_instruction(rng: np.random.Generator, layout: Layout, split: str = "train") -> Instruction:
    """A random instruction the layout supports, of the given split. Training instructions use training templates,
    targets outside `HELDOUT_TARGETS` and `TRAIN_COMPOSITIONS`; a held-out one swaps exactly one of these three for
    its held-out counterpart (`novelty`). Named objects are present and picked out uniquely by their names."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    train_targets = [i for i, o in enumerate(layout.objects) if (o.colour, o.shape) not in HELDOUT_TARGETS]
    heldout_targets = [i for i, o in enumerate(layout.objects) if (o.colour, o.shape) in HELDOUT_TARGETS]
    for _ in range(1000):
        novelty = "" if split == "train" else str(rng.choice(("template", "target", "composition")))
        if novelty == "target" and not heldout_targets:
            continue
        if novelty == "composition":
            kinds = HELDOUT_COMPOSITIONS[int(rng.integers(len(HELDOUT_COMPOSITIONS)))]
        elif rng.random() < 0.55:
            kinds = (str(rng.choice(KINDS, p=(0.25, 0.2, 0.3, 0.15, 0.1))),)
        else:
            kinds = TRAIN_COMPOSITIONS[int(rng.integers(len(TRAIN_COMPOSITIONS)))]
        naming = [i for i, k in enumerate(kinds) if k in ("goto", "around")]
        if novelty == "target" and not naming:
            continue
        novel = int(rng.choice(naming)) if novelty == "target" else int(rng.integers(len(kinds)))
        frame: Pose = layout.start
        clauses, stages, patterns = [], [], []
        for k, kind in enumerate(kinds):
            heldout_here = novelty in ("template", "target") and k == novel
            pool = _templates(kind, _H if novelty == "template" and heldout_here else _T, k == len(kinds) - 1)
            template = pool[int(rng.integers(len(pool)))]
            used = {s.object_index for s in stages if isinstance(s, GoTo | Around)}
            targets = heldout_targets if novelty == "target" and heldout_here else train_targets
            targets = [i for i in targets if i not in used]
            after = stages[-1] if stages else None
            clause = _sample_clause(rng, template, layout, frame, targets, novelty == "target", after)
            if clause is None:
                break
            clauses.append(clause[0])
            stages.append(clause[1])
            patterns.append(template.pattern)
            frame = _predicted_end(clause[1], frame, layout)
        else:
            text = clauses[0]
            if len(clauses) == 2:
                connective = "and" if kinds[1] == "stop" else str(rng.choice(CONNECTIVES))
                text = f"{clauses[0]} {connective} {clauses[1]}"
            return Instruction(text, tuple(stages), split, "+".join(kinds), novelty, tuple(patterns))
    raise RuntimeError("no instruction fits this layout; it needs at least one object")


_NUMBER_VALUES = {word: value for value, word in _NUMBER_WORDS.items()}
_NUMBER_RE = "|".join([*sorted(_NUMBER_VALUES, key=len, reverse=True), r"\d+"])
_COLOUR_RE, _SHAPE_RE = "|".join(COLOURS), "|".join(SHAPES)
_FIELD_RES = {
    "amount": rf"(?P<amount>{_NUMBER_RE}) meters?",
    "dir": "(?P<dir>left|right)",
    "angle": rf"(?P<angle>{_NUMBER_RE})",
    "obj": rf"(?P<obj>(?:(?:{_COLOUR_RE}) )?(?:{_SHAPE_RE})|(?:{_COLOUR_RE}) one)",
    "side": "(?P<side>left|right)",
}
_CLAUSES = tuple((re.compile(t.pattern.format(**_FIELD_RES)), t) for t in TEMPLATES)
_CONNECTIVE_RE = re.compile(" (?:" + "|".join(sorted(CONNECTIVES, key=len, reverse=True)) + ") ")
# the words that say what, how far and which way: a paraphrase may change any other word of a clause, never these
CONTENT_WORDS = frozenset(
    [
        *COLOURS,
        *SHAPES,
        *SIDES,
        *(w for word in _NUMBER_WORDS.values() for w in word.split()),
        *(str(value) for value in _NUMBER_WORDS),
        "one",
    ]
)


def split_clauses(text: str) -> tuple[list[str], list[str]]:
    """(clauses, the connectives between them) of an instruction, lower-cased, spacing and a final "." dropped."""
    cleaned = " ".join(text.lower().split()).rstrip(". ")
    parts = re.split(" (" + "|".join(sorted(CONNECTIVES, key=len, reverse=True)) + ") ", cleaned)
    return parts[0::2], parts[1::2]


def clause_split(clause: str) -> str | None:
    """The split ("train" or "heldout") of the template a clause is written from; None when no template has it."""
    for regex, template in _CLAUSES:
        if regex.fullmatch(clause):
            return template.split
    return None


def content_words(clause: str) -> list[str]:
    """The clause's `CONTENT_WORDS` and digits, sorted."""
    return sorted(w for w in clause.split() if w in CONTENT_WORDS or w.isdigit())


_EXAMPLES = (
    "walk forward two meters",
    "sidestep left 1 meter",
    "turn right 45 degrees",
    "turn around",
    "go to the red ball",
    "walk around the box on the left",
    "stop",
)


def _number_value(words: str) -> int:
    return _NUMBER_VALUES[words] if words in _NUMBER_VALUES else int(words)


class AbsentObjectError(ValueError):
    """An instruction names an object the layout does not pick out uniquely (another layout may)."""


def _resolve(name: str, layout: Layout) -> int:
    hits = [i for i in range(len(layout.objects)) if name in _object_names(layout, i, full_only=False)]
    if len(hits) != 1:
        present = ", ".join(o.name for o in layout.objects)
        raise AbsentObjectError(f"'the {name}' picks out no single object in this layout; it has: {present}")
    return hits[0]


def _parse_clause(clause: str, layout: Layout, last: bool) -> tuple[_Template, Stage]:
    """The template and stage a clause is written from; ValueError when it is no template's."""
    for regex, template in _CLAUSES:
        match = regex.fullmatch(clause)
        if match is None:
            continue
        fields = match.groupdict()
        if template.last_only and not last:
            raise ValueError(f"{clause!r} can only end an instruction")
        if template.kind == "move":
            distance = _number_value(fields["amount"])
            if distance <= 0:
                raise ValueError(f"{clause!r}: the distance must be positive")
            ux, uy = _DIRECTION_XY[template.direction]
            return template, Move(ux * distance, uy * distance)
        if template.kind == "turn":
            angle = _number_value(fields["angle"]) if "angle" in fields else template.angle_deg
            if not 0 < angle <= 360:
                raise ValueError(f"{clause!r}: the angle must be within 1..360 degrees")
            sign = 1.0 if fields.get("dir", "left") == "left" or template.either_way else -1.0
            return template, Turn(sign * math.radians(angle), template.either_way)
        if template.kind == "goto":
            return template, GoTo(_resolve(fields["obj"], layout))
        if template.kind == "around":
            return template, Around(_resolve(fields["obj"], layout), fields.get("side"))
        return template, Stop()
    raise ValueError(
        f"cannot read {clause!r}: an instruction is 1..{MAX_STAGES} clauses joined by "
        f"{' or '.join(repr(c) for c in CONNECTIVES)}, each like one of: {'; '.join(_EXAMPLES)}"
    )


def parse_instruction(text: str, layout: Layout) -> Instruction:
    """Compile a typed instruction into stages for `layout`: any template of either split, numbers as digits or
    words, clauses joined by "then", "and then" or "and", objects named as `sample_instruction` names them; case,
    spacing and a final "." do not matter. Its split is "heldout" when it uses a held-out template, target or
    composition (`novelty` the first of these), "train" otherwise. ValueError for wording no template has, too
    many clauses, or an object the layout does not pick out uniquely (the message lists what the layout has)."""
    cleaned = " ".join(text.lower().split()).rstrip(". ")
    if not cleaned:
        raise ValueError(f"empty instruction; try one like: {'; '.join(_EXAMPLES)}")
    clauses = _CONNECTIVE_RE.split(cleaned)
    if len(clauses) > MAX_STAGES:
        raise ValueError(f"{text!r} has {len(clauses)} clauses; an instruction has at most {MAX_STAGES}")
    parsed = [_parse_clause(c, layout, k == len(clauses) - 1) for k, c in enumerate(clauses)]
    stages = tuple(stage for _, stage in parsed)
    kinds = tuple(template.kind for template, _ in parsed)
    named = [layout.objects[s.object_index] for s in stages if isinstance(s, GoTo | Around)]
    novelties = (
        ("template", any(template.split == _H for template, _ in parsed)),
        ("target", any((o.colour, o.shape) in HELDOUT_TARGETS for o in named)),
        ("composition", kinds in HELDOUT_COMPOSITIONS),
    )
    novelty = next((name for name, used in novelties if used), "")
    split = _H if novelty else _T
    patterns = tuple(template.pattern for template, _ in parsed)
    return Instruction(cleaned, stages, split, "+".join(kinds), novelty, patterns)


def time_limit_for(instruction: Instruction) -> float:
    """A generous time limit (s): 8 s plus an allowance per stage from its distance or angle."""
    limit = 8.0
    for stage in instruction.stages:
        if isinstance(stage, Move):
            limit += 4.0 + math.hypot(stage.dx_m, stage.dy_m) / 0.2
        elif isinstance(stage, Turn):
            limit += 3.0 + abs(stage.angle_rad) / 0.4
        elif isinstance(stage, GoTo):
            limit += 20.0
        elif isinstance(stage, Around):
            limit += 25.0
        else:
            limit += 4.0
    return limit


# ---------------------------------------------------------------------------------------------------- pretraining

_SHAPE_WORDS = {"box": "square", "ball": "round", "pillar": "tall", "cone": "pointed"}


def _random_clause(rng: np.random.Generator, template: _Template, name: str) -> str:
    """A clause of `template` with random numbers and `name` for its object (no layout needed)."""
    direction = template.direction or str(rng.choice(SIDES))
    distance = int(rng.choice(MOVE_DISTANCES_M.get(direction, (1,))))
    fields = {
        "amount": f"{_number(rng, distance)} {'meter' if distance == 1 else 'meters'}",
        "dir": str(rng.choice(SIDES)),
        "angle": _number(rng, int(rng.choice(TURN_ANGLES_DEG))),
        "obj": name,
        "side": str(rng.choice(SIDES)),
    }
    return template.pattern.format(**fields)


def _train_name(rng: np.random.Generator) -> str:
    pairs = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELDOUT_TARGETS]
    colour, shape = pairs[int(rng.integers(len(pairs)))]
    return str(rng.choice((f"{colour} {shape}", shape, f"{colour} one")))


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _doc_instructions(rng: np.random.Generator) -> str:
    texts = []
    for _ in range(int(rng.integers(1, 4))):
        kinds = (str(_pick(rng, KINDS)),) if rng.random() < 0.5 else _pick(rng, TRAIN_COMPOSITIONS)
        clauses = [
            _random_clause(rng, _pick(rng, _templates(kind, _T, k == len(kinds) - 1)), _train_name(rng))
            for k, kind in enumerate(kinds)
        ]
        text = " then ".join(clauses)
        texts.append(
            str(_pick(rng, ("{} .", "the robot was told to {} and it did .", "you may hear : {} .")).format(text))
        )
    return " ".join(texts)


def _doc_synonym(rng: np.random.Generator) -> str:
    heldout = _pick(rng, [t for t in TEMPLATES if t.split == _H])
    train = _BY_PATTERN[heldout.same_as]
    name = _train_name(rng)
    state = rng.bit_generator.state
    said = _random_clause(rng, heldout, name)
    rng.bit_generator.state = state  # the same numbers and side in both phrasings
    meant = _random_clause(rng, train, name)
    forms = (
        "to {h} is to {t} .",
        "{h} means {t} .",
        "if you are told to {h} , {t} .",
        "{hg} means {tg} .",
        "{hg} and {tg} mean the same thing .",
        "when someone says {hg} they mean {tg} .",
    )
    return str(_pick(rng, forms)).format(h=said, t=meant, hg=heldout.gloss[0], tg=heldout.gloss[1])


def _doc_scene(rng: np.random.Generator) -> str:
    colour, shape = str(_pick(rng, list(COLOURS))), str(_pick(rng, SHAPES))
    other = f"{_pick(rng, list(COLOURS))} {_pick(rng, SHAPES)}"
    forms = (
        f"there is a {colour} {shape} and a {other} .",
        f"the {colour} {shape} is {_number(rng, int(rng.integers(1, 4)))} meters away .",
        f"a {shape} is {_SHAPE_WORDS[shape]} . this {shape} is {colour} .",
        f"{colour} is a colour and {shape} is a shape .",
        f"the {shape} on the {_pick(rng, SIDES)} is {colour} .",
        f"you can see a {colour} {shape} behind the {other} .",
    )
    return str(_pick(rng, forms))


def _doc_composition(rng: np.random.Generator) -> str:
    kinds = _pick(rng, TRAIN_COMPOSITIONS + HELDOUT_COMPOSITIONS)
    first, second = (
        _random_clause(rng, _pick(rng, _templates(kind, _T, k == 1)), _train_name(rng)) for k, kind in enumerate(kinds)
    )
    forms = (
        "first {a} . after that , {b} .",
        "{a} , and when that is done , {b} .",
        "the robot will {a} and afterwards {b} .",
        "two steps : {a} , then {b} .",
    )
    return str(_pick(rng, forms)).format(a=first, b=second)


def _doc_numbers(rng: np.random.Generator) -> str:
    value = int(_pick(rng, (1, 2, 3)))
    angle = int(_pick(rng, TURN_ANGLES_DEG))
    forms = (
        f"{_NUMBER_WORDS[value]} meters is {value} meters .",
        f"{_NUMBER_WORDS[angle]} degrees is {angle} degrees .",
        "a quarter turn is ninety degrees . turn left means turn left ninety degrees .",
        "turn around means turn one hundred eighty degrees , either way .",
        f"to go around the {_train_name(rng)} on the left is to pass it with it on your right .",
        "stop at the box means go to the box and stand still there .",
    )
    return str(_pick(rng, forms))


def pretraining_documents(count: int, seed: int) -> list[str]:
    """`count` unlabelled documents for pretraining the planner's language model, deterministic in `seed`: training
    instructions, held-out paraphrases explained by the training words they mean ("approach means go to ."),
    colour and shape words in sentences, numbers, and compositions of both splits written as prose. Every word of
    either split's instructions occurs; held-out targets appear only in scene sentences."""
    rng = np.random.default_rng(seed)
    makers = (_doc_instructions, _doc_synonym, _doc_scene, _doc_composition, _doc_numbers)
    weights = np.array([0.3, 0.3, 0.15, 0.15, 0.1])
    return [makers[int(rng.choice(len(makers), p=weights))](rng) for _ in range(count)]


# ---------------------------------------------------------------------------------------------------- judging


class Tracker:
    """Judges one episode. `update` after every policy step (or decision); `finish` when the planner says STOP or
    time runs out. `stage` advances when the current stage's criterion holds (the last stage never advances);
    success needs every stage done in order, the last one's criterion holding at `finish`, no fall and no time-out.

    Criteria: Move within 0.35 m of its target point; Turn within 20 deg of its angle, yaw integrated (a full spin
    is not zero); GoTo within `REACH_M` of the object's centre, and below 0.15 m/s when last; Around a sweep of the
    bearing about the object >= 150 deg (in the side's sense) never nearer than 0.45 m; Stop 1 s within 0.3 m of
    where it began. Failures end the episode at once with `reason` "fell", "too_close" (Around) or "moved" (Stop);
    `finish` gives "success", "timeout", "incomplete" (stages left) or "missed" (the last criterion fails)."""

    def __init__(
        self, instruction: Instruction, layout: Layout, start_pose: Sequence[float], time_limit_s: float | None = None
    ) -> None:
        self.instruction = instruction
        self.layout = layout
        self.time_limit_s = time_limit_for(instruction) if time_limit_s is None else float(time_limit_s)
        self._stages = instruction.stages
        self._pose: Pose = (float(start_pose[0]), float(start_pose[1]), float(start_pose[2]))
        self._speed = 0.0
        self._stage = 0
        self._frame: Pose = self._pose
        self._done, self._success, self._reason = False, False, ""
        self._begin(0.0)

    @property
    def stage(self) -> int:
        return self._stage

    @property
    def done(self) -> bool:
        return self._done

    @property
    def success(self) -> bool:
        return self._success

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def frame(self) -> Pose:
        """The current stage's frame (x, y, yaw)."""
        return self._frame

    @property
    def pose(self) -> Pose:
        """The pose last seen (world x m, y m, yaw rad)."""
        return self._pose

    @property
    def speed(self) -> float:
        """The ground speed last seen (m/s)."""
        return self._speed

    @property
    def stage_xy(self) -> tuple[float, float]:
        """Where the robot stood when the current stage began (world m)."""
        return self._stage_xy

    @property
    def stage_t(self) -> float:
        """When the current stage began (s since the instruction)."""
        return self._stage_t

    @property
    def turned(self) -> float:
        """Yaw change (rad, + left) since the current stage began, integrated (a full spin is 2 pi)."""
        return self._turned

    @property
    def turn_targets(self) -> tuple[float, ...]:
        """The current Turn's cumulative yaw changes that complete it (rad, see `turn_targets`); () in other stages."""
        return self._turn_targets if isinstance(self._stages[self._stage], Turn) else ()

    @property
    def swept(self) -> float:
        """The current Around's sweep of the bearing about its object (rad, + counter-clockwise); 0 in other stages."""
        return self._swept

    def _begin(self, t_s: float) -> None:
        stage = self._stages[self._stage]
        self._stage_t = t_s
        self._stage_xy = self._pose[:2]
        self._turned = 0.0
        self._swept = 0.0
        self._closest = math.inf
        if isinstance(stage, Turn):
            self._turn_targets = turn_targets(stage, self._frame, self._pose[2])
        if isinstance(stage, Around):
            ox, oy = self.layout.objects[stage.object_index].xy
            self._centre = (ox, oy)
            self._bearing = math.atan2(self._pose[1] - oy, self._pose[0] - ox)
            self._closest = math.hypot(self._pose[0] - ox, self._pose[1] - oy)

    def update(self, pose: Sequence[float], speed_mps: float, fell: bool, t_s: float) -> None:
        if self._done:
            return
        x, y, yaw = float(pose[0]), float(pose[1]), float(pose[2])
        stage = self._stages[self._stage]
        self._turned += wrap_angle(yaw - self._pose[2])
        if isinstance(stage, Around):
            bearing = math.atan2(y - self._centre[1], x - self._centre[0])
            self._swept += wrap_angle(bearing - self._bearing)
            self._bearing = bearing
            self._closest = min(self._closest, math.hypot(x - self._centre[0], y - self._centre[1]))
        self._pose, self._speed = (x, y, yaw), float(speed_mps)
        if fell:
            self._end(False, "fell")
        elif t_s >= self.time_limit_s:
            self.finish(t_s)
        elif isinstance(stage, Around) and self._closest < AROUND_MIN_DISTANCE_M:
            self._end(False, "too_close")
        elif isinstance(stage, Stop) and math.dist(self._pose[:2], self._stage_xy) > STOP_RADIUS_M:
            self._end(False, "moved")
        elif self._stage < len(self._stages) - 1 and self._holds(t_s):
            self._frame = next_frame(stage, self._frame, self._pose)
            self._stage += 1
            self._begin(t_s)

    def _holds(self, t_s: float) -> bool:
        stage = self._stages[self._stage]
        x, y = self._pose[0], self._pose[1]
        if isinstance(stage, Move):
            return math.dist((x, y), move_target(stage, self._frame)) <= MOVE_TOLERANCE_M
        if isinstance(stage, Turn):
            return any(abs(self._turned - target) <= TURN_TOLERANCE_RAD for target in self._turn_targets)
        if isinstance(stage, GoTo):
            near = math.dist((x, y), self.layout.objects[stage.object_index].xy) <= REACH_M
            return near and (self._stage < len(self._stages) - 1 or self._speed < STOPPED_MPS)
        if isinstance(stage, Around):
            swept = self._swept * stage.sense if stage.sense else abs(self._swept)
            return swept >= AROUND_SWEEP_RAD and self._closest >= AROUND_MIN_DISTANCE_M
        held = t_s - self._stage_t >= STOP_HOLD_S - 1e-9
        return held and math.dist((x, y), self._stage_xy) <= STOP_RADIUS_M

    def finish(self, t_s: float) -> None:
        """Judge the episode as it stands at `t_s` (the planner said STOP, or time ran out)."""
        if self._done:
            return
        if t_s >= self.time_limit_s:
            self._end(False, "timeout")
        elif self._stage < len(self._stages) - 1:
            self._end(False, "incomplete")
        elif not self._holds(t_s):
            self._end(False, "missed")
        else:
            self._end(True, "success")

    def _end(self, success: bool, reason: str) -> None:
        self._done, self._success, self._reason = True, success, reason
