"""The scripted expert: a controller that knows the scene and drives the walking policy through the planner's
codebook at 5 Hz, and a kinematic robot to play it against without physics.

`Oracle.act` reads the judge (`Tracker`): the stage it has reached, that stage's frame and the pose and speed it
last saw, and answers a codebook index (`nearest_subgoal` of a body-frame command) or STOP. One control law per
stage kind: a Move walks to its point (backward and sideways as the words say) holding the frame's heading; a Turn
turns in place by what is left of its angle; a GoTo faces the object and walks to it; an Around walks onto the circle
about its object and follows its guiding vector field; a Stop stands. Where the straight way is not clear of blocks
and other objects (a `SAFETY_M` margin), a GoTo or an Around's approach follows the shortest clear way on a
navigation grid instead: a reactive detour beside the first blocker gets caught in pockets between two blockers.
Frames: world x, y (m) and yaw (rad, + left); a body-frame command is (vx forward m/s, vy left m/s, yaw rate rad/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ogi.envs.instructions import (
    AROUND_RADIUS_M,
    REACH_M,
    STOPPED_MPS,
    Around,
    GoTo,
    Instruction,
    Move,
    Stage,
    Tracker,
    Turn,
    around_arc_clear,
    move_target,
    obstacle_distance,
)
from ogi.envs.layout import ARENA_HALF_M, STOP, SUBGOAL_YAW_RADPS, Layout, nearest_subgoal, subgoal_command, wrap_angle

DECISION_S = 0.2  # the planner's period: 5 Hz
CRUISE_MPS = 0.8  # on a long straight way
NEAR_MPS = 0.4  # near a target, on a curve, backward or sideways
SLOW_WITHIN_M = 1.0  # slow to NEAR_MPS this close to where the walk ends
YAW_GAIN = 1.5  # yaw rate (rad/s) per rad of heading error
TURN_IN_PLACE_RAD = 0.8  # a walk turns on the spot while its heading is off by more than this
CRUISE_ALIGNED_RAD = 0.25  # and cruises only with its heading off by less than this
MOVE_STAND_M = 0.2  # a final Move stands this close to its point ...
MOVE_STOP_M = 0.3  # ... and says STOP a decision later if still this close (the judge allows 0.35 m)
TURN_FAST_RADPS, TURN_SLOW_RADPS = 0.8, 0.4  # a Turn's yaw rates ...
TURN_FAST_RAD = 0.6  # ... the fast one while more than this is left
TURN_STAND_RAD = 0.15  # it stands once this little is left ...
TURN_STOP_RAD = 0.25  # ... and says STOP a decision later if still within this (the judge allows 20 deg)
GOTO_STAND_M = 0.7  # from the object's centre (the judge's reach is REACH_M)
GOTO_AIM_M = 0.55  # a GoTo aims at a point this far from the centre, so that it crosses GOTO_STAND_M
OBJECT_RADIUS_M = 0.25  # an object is a disc of this radius to keep clear of
SAFETY_M = 0.45  # clearance kept from blocks' edges and objects' discs
HARD_CLEARANCE_M = 0.35  # a way never goes nearer than this to a block's edge or an object's disc
NEAR_PENALTY = 20.0  # extra cost per m of a way per m that it comes within SAFETY_M
GRID_M = 0.1  # cell of the navigation grid
WALL_MARGIN_M = 0.3  # the grid's ways keep this far inside the arena's walls
LOOKAHEAD_CELLS = 15  # how far along the grid's way the next point to walk at may lie
SEARCH_BEARING_RAD = math.radians(40.0)  # within the head camera's 100 degree field of view, with a margin
AROUND_APPROACH_M = 0.3  # beyond the circle by more than this, an Around walks the tangent onto it
AROUND_NEAREST_M = 0.55  # an Around steps straight out when nearer its object's centre than this
AROUND_STOP_RAD = math.radians(165.0)  # a final Around says STOP once it has swept this far
STOP_AFTER_S = 1.2  # a final Stop says STOP after standing this long
STAND = (0.0, 0.0, 0.0)
Command = tuple[float, float, float]  # (vx m/s, vy m/s, yaw rate rad/s) in the body frame


def _to_body(dx: float, dy: float, yaw: float) -> tuple[float, float]:
    """A world-frame vector in the body frame: R(-yaw) (dx, dy)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return (c * dx + s * dy, -s * dx + c * dy)


def _steer(heading_error_rad: float, feedforward_radps: float = 0.0) -> float:
    """Yaw rate (rad/s) that turns a heading error away, within the codebook's range."""
    top = max(SUBGOAL_YAW_RADPS)
    return min(max(YAW_GAIN * heading_error_rad + feedforward_radps, -top), top)


_NEIGHBOURS = tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0))


class _NavigationGrid:
    """Shortest clear ways to a stage's goal over the arena on a grid of `GRID_M` cells: a GoTo's goal is within
    `GOTO_AIM_M` of its object, an Around's the circle of `AROUND_RADIUS_M` about it (+- one cell).

    A cell's clearance is its distance to the nearest block's edge or other object's disc (m); entering it costs
    its step length (m) times 1 with `SAFETY_M` of clearance, up to 1 + `NEAR_PENALTY` / m below that, and is not
    allowed below `HARD_CLEARANCE_M` or outside the walkable square. The cost-to-go C solves
    C(i) = min_j C(j) + |i - j| w(i) over the 8 neighbours j of i, C = 0 on the goal (value iteration)."""

    def __init__(self, layout: Layout, index: int, goto: bool) -> None:
        axis = np.arange(-ARENA_HALF_M, ARENA_HALF_M + GRID_M / 2, GRID_M)
        gx, gy = np.meshgrid(axis, axis, indexing="ij")
        clearance = np.full(gx.shape, 4.0 * ARENA_HALF_M)  # finite, so that interpolating it never gives nan
        for o in layout.obstacles:  # `obstacle_distance` on every cell
            c, s = math.cos(o.yaw), math.sin(o.yaw)
            dx, dy = gx - o.xy[0], gy - o.xy[1]
            lx = np.abs(c * dx + s * dy) - o.half_size[0]
            ly = np.abs(-s * dx + c * dy) - o.half_size[1]
            edge = np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0)) + np.minimum(np.maximum(lx, ly), 0.0)
            clearance = np.minimum(clearance, edge)
        for k, o in enumerate(layout.objects):
            if k != index:
                clearance = np.minimum(clearance, np.hypot(gx - o.xy[0], gy - o.xy[1]) - OBJECT_RADIUS_M)
        inside = np.maximum(np.abs(gx), np.abs(gy)) <= ARENA_HALF_M - WALL_MARGIN_M
        weight = 1.0 + NEAR_PENALTY * np.clip(SAFETY_M - clearance, 0.0, None)
        weight[(clearance < HARD_CLEARANCE_M) | ~inside] = np.inf
        from_centre = np.hypot(gx - layout.objects[index].xy[0], gy - layout.objects[index].xy[1])
        goal = from_centre <= GOTO_AIM_M if goto else np.abs(from_centre - AROUND_RADIUS_M) <= GRID_M
        cost = np.where(goal & np.isfinite(weight), 0.0, np.inf)
        n = len(axis)
        while True:
            previous = cost.copy()
            for di, dj in _NEIGHBOURS:
                to = (slice(max(-di, 0), n - max(di, 0)), slice(max(-dj, 0), n - max(dj, 0)))
                src = (slice(max(di, 0), n + min(di, 0)), slice(max(dj, 0), n + min(dj, 0)))
                step = GRID_M * math.hypot(di, dj)
                np.minimum(cost[to], cost[src] + step * weight[to], out=cost[to])
            if np.array_equal(cost, previous):
                break
        self.clearance, self.cost, self._n = clearance, cost, n

    def _cell(self, xy: Sequence[float]) -> tuple[int, int]:
        return tuple(min(max(round((v + ARENA_HALF_M) / GRID_M), 0), self._n - 1) for v in xy)

    def clearance_at(self, points: np.ndarray) -> np.ndarray:
        """(m,) clearance (m) at (m, 2) world points, interpolated bilinearly between cells."""
        u = np.clip((points + ARENA_HALF_M) / GRID_M, 0.0, self._n - 1.0)
        i = np.minimum(u.astype(int), self._n - 2)
        f = u - i
        c = self.clearance
        return (
            c[i[:, 0], i[:, 1]] * (1 - f[:, 0]) * (1 - f[:, 1])
            + c[i[:, 0] + 1, i[:, 1]] * f[:, 0] * (1 - f[:, 1])
            + c[i[:, 0], i[:, 1] + 1] * (1 - f[:, 0]) * f[:, 1]
            + c[i[:, 0] + 1, i[:, 1] + 1] * f[:, 0] * f[:, 1]
        )

    def visible(self, a: Sequence[float], b: Sequence[float]) -> bool:
        """Does the straight way from a to b keep `SAFETY_M` of clearance (or what its ends have, if less)?"""
        steps = max(1, math.ceil(math.dist(a, b) / (GRID_M / 2)))
        f = np.linspace(0.0, 1.0, steps + 1)[:, None]
        along = self.clearance_at(np.asarray(a, dtype=float) * (1 - f) + np.asarray(b, dtype=float) * f)
        return bool(np.all(along >= min(SAFETY_M, along[0], along[-1]) - 0.01))  # 0.01 m: interpolation error

    def next_point(self, xy: Sequence[float]) -> tuple[float, float] | None:
        """The farthest point in sight from `xy` on the steepest descent of the cost-to-go (at most
        `LOOKAHEAD_CELLS` cells on); None when no way is known from here."""
        i, j = self._cell(xy)
        path = []
        for _ in range(LOOKAHEAD_CELLS):
            options = [
                (self.cost[i + di, j + dj], i + di, j + dj)
                for di, dj in _NEIGHBOURS
                if 0 <= i + di < self._n and 0 <= j + dj < self._n
            ]
            best, bi, bj = min(options)
            if not math.isfinite(best) or best >= self.cost[i, j]:
                break
            i, j = bi, bj
            path.append((-ARENA_HALF_M + i * GRID_M, -ARENA_HALF_M + j * GRID_M))
        if not path:
            return None
        return next((p for p in reversed(path) if self.visible(xy, p)), path[0])


class Oracle:
    """A scripted expert for one episode of `instruction` in `layout`. Deterministic: its answer depends on the
    judge's state, the time and whether its previous answer in the same stage was to stand."""

    def __init__(self, instruction: Instruction, layout: Layout) -> None:
        for stage in instruction.stages:
            if isinstance(stage, GoTo | Around) and not 0 <= stage.object_index < len(layout.objects):
                raise ValueError(f"{stage} names object {stage.object_index}; the layout has {len(layout.objects)}")
        self.instruction = instruction
        self.layout = layout
        self._stood_in: int | None = None  # the stage in which the previous answer was to stand
        self._grids: dict[int, _NavigationGrid] = {}  # per GoTo or Around stage, built when first needed
        self._acquired: set[int] = set()  # GoTo and Around stages whose object has been in view

    def act(self, tracker: Tracker, t_s: float) -> int:
        """A codebook index, or STOP, for the next `DECISION_S`; `t_s` is the time since the instruction began."""
        if tracker.done:
            return STOP
        k = tracker.stage
        stage = self.instruction.stages[k]
        last = k == len(self.instruction.stages) - 1
        command = self._command(stage, last, self._stood_in == k, tracker, t_s)
        if command is None:
            return STOP
        index = nearest_subgoal(*command)
        self._stood_in = k if subgoal_command(index) == STAND else None
        return index

    def observe(self, stage: int, subgoal: int) -> None:
        """What was done at the decision just answered, when another decider acted and the oracle only labelled
        (DAgger): its memory of having stood follows what the robot was told, not its own answer."""
        stood = subgoal != STOP and subgoal_command(subgoal) == STAND
        self._stood_in = stage if stood else None

    def _command(self, stage: Stage, last: bool, stood: bool, tracker: Tracker, t_s: float) -> Command | None:
        """The body-frame command of the stage's control law; None for STOP."""
        if isinstance(stage, Move):
            return self._move(stage, last, stood, tracker)
        if isinstance(stage, Turn):
            return self._turn(last, stood, tracker)
        if isinstance(stage, GoTo):
            return self._goto(stage, last, tracker)
        if isinstance(stage, Around):
            return self._around(stage, last, tracker)
        return None if last and t_s - tracker.stage_t >= STOP_AFTER_S else STAND

    # ------------------------------------------------------------------------------------------------ laws

    def _move(self, stage: Move, last: bool, stood: bool, tracker: Tracker) -> Command | None:
        """Walk straight at the point, forward, backward or sideways, holding the frame's heading."""
        x, y, yaw = tracker.pose
        target = move_target(stage, tracker.frame)
        ex, ey = _to_body(target[0] - x, target[1] - y, yaw)
        distance = math.hypot(ex, ey)
        if last and stood and distance <= MOVE_STOP_M:
            return None
        if last and distance <= MOVE_STAND_M:
            return STAND
        speed = CRUISE_MPS if distance > SLOW_WITHIN_M else NEAR_MPS
        # v = speed e / |e|; the codebook's nearest entry caps it at 0.4 m/s backward and 0.3 m/s sideways
        return (speed * ex / distance, speed * ey / distance, _steer(wrap_angle(tracker.frame[2] - yaw)))

    def _turn(self, last: bool, stood: bool, tracker: Tracker) -> Command | None:
        """Turn in place toward the nearest of the turn's targets, slowing near it."""
        remaining = min((target - tracker.turned for target in tracker.turn_targets), key=abs)
        if last and stood and abs(remaining) <= TURN_STOP_RAD:
            return None
        if abs(remaining) <= TURN_STAND_RAD:
            return STAND
        rate = TURN_FAST_RADPS if abs(remaining) > TURN_FAST_RAD else TURN_SLOW_RADPS
        return (0.0, 0.0, math.copysign(rate, remaining))

    def _search(self, k: int, index: int, pose: Sequence[float]) -> Command | None:
        """Turn left on the spot until the object first comes within `SEARCH_BEARING_RAD` of the heading in stage
        `k` (the head camera sees it then); None once it has. A planner that imitates the oracle sees only the image,
        so the oracle does not turn towards what the camera cannot see: it searches the one way a planner can learn."""
        if k in self._acquired:
            return None
        centre = self.layout.objects[index].xy
        if abs(wrap_angle(math.atan2(centre[1] - pose[1], centre[0] - pose[0]) - pose[2])) <= SEARCH_BEARING_RAD:
            self._acquired.add(k)
            return None
        return (0.0, 0.0, TURN_FAST_RADPS)

    def _goto(self, stage: GoTo, last: bool, tracker: Tracker) -> Command | None:
        """Find the object, then walk at it, or along the shortest clear way to it when something is in the way;
        stand near it."""
        x, y, _ = tracker.pose
        centre = self.layout.objects[stage.object_index].xy
        distance = math.dist((x, y), centre)
        search = self._search(tracker.stage, stage.object_index, tracker.pose)
        if search is not None and distance > GOTO_STAND_M:
            return search
        if distance <= GOTO_STAND_M:
            return None if last and tracker.speed < STOPPED_MPS and distance <= REACH_M else STAND
        f = 1.0 - GOTO_AIM_M / distance  # the straight way in ends at GOTO_AIM_M from the centre
        aim = self._route(tracker.stage, (x, y), (x + f * (centre[0] - x), y + f * (centre[1] - y))) or centre
        return self._walk(tracker.pose, aim, far=distance - GOTO_STAND_M > SLOW_WITHIN_M)

    def _around(self, stage: Around, last: bool, tracker: Tracker) -> Command | None:
        """Walk onto the circle of `AROUND_RADIUS_M` about the object along the tangent from here (by the shortest
        clear way when that is blocked), then follow the circle's guiding field, facing along it."""
        sense = stage.sense or self._free_sense(stage.object_index, tracker)
        if last and tracker.swept * sense >= AROUND_STOP_RAD:
            return None
        x, y, yaw = tracker.pose
        centre = self.layout.objects[stage.object_index].xy
        d = math.dist((x, y), centre)
        search = self._search(tracker.stage, stage.object_index, tracker.pose)
        if search is not None and d > AROUND_RADIUS_M + AROUND_APPROACH_M:
            return search
        if d > AROUND_RADIUS_M + AROUND_APPROACH_M:
            # the tangent from here touches the circle at bearing phi + sense acos(R / d) about its centre
            bearing = math.atan2(y - centre[1], x - centre[0]) + sense * math.acos(AROUND_RADIUS_M / d)
            touch = (centre[0] + AROUND_RADIUS_M * math.cos(bearing), centre[1] + AROUND_RADIUS_M * math.sin(bearing))
            aim = self._route(tracker.stage, (x, y), touch) or touch
            return self._walk(tracker.pose, aim, far=math.dist((x, y), aim) > SLOW_WITHIN_M)
        vx, vy = self._around_field((x, y), centre, sense)
        heading_error = wrap_angle(math.atan2(vy, vx) - yaw)
        speed = 0.0 if abs(heading_error) > TURN_IN_PLACE_RAD else NEAR_MPS
        # on the circle the heading turns at sense * v / R
        feedforward = sense * speed / max(d, AROUND_NEAREST_M)
        bx, by = _to_body(speed * vx, speed * vy, yaw)
        return (bx, by, _steer(heading_error, feedforward))

    def _walk(self, pose: Sequence[float], point: Sequence[float], far: bool) -> Command:
        """Face the point and walk at it: turn on the spot while far off its bearing, cruise when far and aligned."""
        heading_error = wrap_angle(math.atan2(point[1] - pose[1], point[0] - pose[0]) - pose[2])
        if abs(heading_error) > TURN_IN_PLACE_RAD:
            return (0.0, 0.0, _steer(heading_error))
        speed = CRUISE_MPS if far and abs(heading_error) < CRUISE_ALIGNED_RAD else NEAR_MPS
        return (speed, 0.0, _steer(heading_error))

    # ------------------------------------------------------------------------------------------------ geometry

    def _route(self, k: int, xy: Sequence[float], direct: Sequence[float]) -> tuple[float, float] | None:
        """None when the straight way from `xy` to `direct` is clear, else the point to walk at next on the
        shortest clear way to stage `k`'s goal (its navigation grid is built on first use)."""
        if k not in self._grids:
            stage = self.instruction.stages[k]
            self._grids[k] = _NavigationGrid(self.layout, stage.object_index, isinstance(stage, GoTo))
        grid = self._grids[k]
        return None if grid.visible(xy, direct) else grid.next_point(xy)

    @staticmethod
    def _around_field(xy: Sequence[float], centre: Sequence[float], sense: int) -> tuple[float, float]:
        """Unit world-frame direction of the guiding field onto the circle of radius R about `centre` in `sense`:
        v = (-(d^2 - R^2) u + 2 d R t) / (d^2 + R^2), u the outward radial and t the tangent in `sense`;
        straight out nearer than `AROUND_NEAREST_M`."""
        rx, ry = xy[0] - centre[0], xy[1] - centre[1]
        d = max(math.hypot(rx, ry), 1e-6)
        ux, uy = rx / d, ry / d
        if d < AROUND_NEAREST_M:
            return (ux, uy)
        tx, ty = -sense * uy, sense * ux
        r = AROUND_RADIUS_M
        radial, tangential = -(d * d - r * r) / (d * d + r * r), 2 * d * r / (d * d + r * r)
        return (radial * ux + tangential * tx, radial * uy + tangential * ty)

    def _free_sense(self, index: int, tracker: Tracker) -> int:
        """The sense for an Around of either side: the one whose arc is clear from where the stage began, or if
        both are (or neither), the one whose field there needs the smaller turn from the stage's heading."""
        clear = [s for s in (1, -1) if around_arc_clear(self.layout, index, tracker.stage_xy, s)]
        if len(clear) == 1:
            return clear[0]
        centre = self.layout.objects[index].xy

        def turn_needed(sense: int) -> float:
            vx, vy = self._around_field(tracker.stage_xy, centre, sense)
            return abs(wrap_angle(math.atan2(vy, vx) - tracker.frame[2]))

        return min((1, -1), key=turn_needed)


# ---------------------------------------------------------------------------------------------------- kinematic robot

SIM_DT_S = 0.02  # the walking policy's 50 Hz
FALL_OBSTACLE_M = 0.3  # the kinematic robot falls this near a block's edge ...
FALL_OBJECT_M = 0.35  # ... or an object's centre (but a GoTo target's)


def simulate_kinematic(
    instruction: Instruction,
    layout: Layout,
    *,
    seed: int = 0,
    lag_s: float = 0.1,
    noise: float = 0.05,
    max_s: float | None = None,
) -> tuple[Tracker, int]:
    """Play the oracle against a kinematic robot; returns the judged tracker and the number of decisions.

    The body velocity (vx, vy, yaw rate) follows the command times (1 + noise N(0, 1)) per component (drawn per
    decision) with a first-order lag: dv/dt = (v_cmd - v) / lag_s, integrated at 50 Hz from `layout.start`. The
    oracle decides every 0.2 s, the tracker sees every 50 Hz step; the episode is judged (`finish`) at STOP or at
    the time limit (`max_s`, default `time_limit_for`). The robot falls within `FALL_OBSTACLE_M` of a block's edge
    or `FALL_OBJECT_M` of an object's centre, the objects a GoTo of the instruction names excepted."""
    if lag_s <= 0.0:
        raise ValueError(f"lag_s must be > 0, got {lag_s}")
    if noise < 0.0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if max_s is not None and max_s <= 0.0:
        raise ValueError(f"max_s must be > 0 or None, got {max_s}")
    rng = np.random.default_rng(seed)
    tracker = Tracker(instruction, layout, layout.start, max_s)
    oracle = Oracle(instruction, layout)
    goals = {s.object_index for s in instruction.stages if isinstance(s, GoTo)}
    solid = [o.xy for k, o in enumerate(layout.objects) if k not in goals]
    x, y, yaw = layout.start
    vx = vy = yaw_rate = 0.0
    steps_per_decision = round(DECISION_S / SIM_DT_S)
    decisions, step = 0, 0
    while not tracker.done:
        t = step * SIM_DT_S
        index = oracle.act(tracker, t)
        decisions += 1
        if index == STOP:
            tracker.finish(t)
            break
        gains = 1.0 + noise * rng.standard_normal(3)
        goal_vx, goal_vy, goal_yaw_rate = (float(v * g) for v, g in zip(subgoal_command(index), gains))
        blend = min(SIM_DT_S / lag_s, 1.0)
        for _ in range(steps_per_decision):
            # v <- v + (v_cmd - v) dt / lag, then the pose integrates v rotated into the world frame
            vx += (goal_vx - vx) * blend
            vy += (goal_vy - vy) * blend
            yaw_rate += (goal_yaw_rate - yaw_rate) * blend
            c, s = math.cos(yaw), math.sin(yaw)
            x += (c * vx - s * vy) * SIM_DT_S
            y += (s * vx + c * vy) * SIM_DT_S
            yaw = wrap_angle(yaw + yaw_rate * SIM_DT_S)
            step += 1
            fell = any(obstacle_distance((x, y), o) < FALL_OBSTACLE_M for o in layout.obstacles) or any(
                math.dist((x, y), xy) < FALL_OBJECT_M for xy in solid
            )
            tracker.update((x, y, yaw), math.hypot(vx, vy), fell, step * SIM_DT_S)
            if tracker.done:
                break
    return tracker, decisions
