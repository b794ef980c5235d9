"""Parameterized terrain tiles whose hardness follows one difficulty in [0, 1]; pure height-field generation.

A tile is a square height field centred at (0, 0) with a flat spawn platform at height 0 in its middle.
Distances from the centre are Chebyshev (`max(|x|, |y|)`), so slopes, stairs and gap rings are square
pyramids and rings around the platform, as in legged_gym. `*_up`: the platform is the lowest point and
the ground rises walking outward (the robot climbs out); `*_down`: the platform is the top and the ground
falls walking outward (the robot descends). Placement into MuJoCo and the curriculum live elsewhere.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ogi.validation import ConfigError, check_range


class TerrainKind(str, Enum):
    """Terrain families (legged_gym convention): `*_up` has the platform as the lowest point and the ground
    rising outward, so the robot climbs; `*_down` has the platform on top and the ground falling outward."""

    FLAT = "flat"
    ROUGH = "rough"
    SLOPE_UP = "slope_up"
    SLOPE_DOWN = "slope_down"
    STAIRS_UP = "stairs_up"
    STAIRS_DOWN = "stairs_down"
    OBSTACLES = "obstacles"
    STEPPING_STONES = "stepping_stones"
    GAPS = "gaps"
    WAVES = "waves"


# (value at difficulty 0, value at difficulty 1), linear in between. Every entry moves from easy to hard:
# friction and stone size fall, the rest grow. Sized for a go2-class robot (base ~0.32 m high, foot ~2 cm).
DIFFICULTY_TABLE: Mapping[str, tuple[float, float]] = types.MappingProxyType(
    {
        "friction": (1.0, 0.4),
        "deformability": (0.0, 0.8),
        "slope_rad": (0.0, 0.4),
        "roughness_m": (0.0, 0.08),
        "step_height_m": (0.05, 0.20),
        "obstacle_density_per_m2": (0.0, 1.5),
        "obstacle_height_m": (0.05, 0.20),
        "stone_size_m": (0.8, 0.3),
        "stone_gap_m": (0.05, 0.25),
        "gap_width_m": (0.05, 0.40),
        "wave_amplitude_m": (0.0, 0.15),
    }
)

# The table entries each kind's geometry uses; friction and deformability apply to every kind.
# An entry a kind does not use keeps its difficulty-0 value, so a spec never claims hardness its tile lacks.
KIND_PARAMETERS: Mapping[TerrainKind, tuple[str, ...]] = types.MappingProxyType(
    {
        TerrainKind.FLAT: (),
        TerrainKind.ROUGH: ("roughness_m",),
        TerrainKind.SLOPE_UP: ("slope_rad",),
        TerrainKind.SLOPE_DOWN: ("slope_rad",),
        TerrainKind.STAIRS_UP: ("step_height_m",),
        TerrainKind.STAIRS_DOWN: ("step_height_m",),
        TerrainKind.OBSTACLES: ("obstacle_density_per_m2", "obstacle_height_m"),
        TerrainKind.STEPPING_STONES: ("stone_size_m", "stone_gap_m"),
        TerrainKind.GAPS: ("gap_width_m",),
        TerrainKind.WAVES: ("wave_amplitude_m",),
    }
)
_CONTACT_PARAMETERS = ("friction", "deformability")

HEIGHT_BOUNDS_M = (-2.0, 2.0)  # every generated height lies in this closed interval
MAX_RELIEF_M = 1.5  # slopes and stairs level off into a plateau this far above or below the platform
HOLE_DEPTH_M = 1.0  # stepping-stone holes and gaps drop to -HOLE_DEPTH_M
_ROUGH_CELL_M = 0.25  # spacing of the coarse noise grid: bumps about one go2 stride long
_BLEND_M = 0.5  # rough and wave amplitudes ramp from 0 at the platform edge to full over this distance
_WAVE_LENGTH_M = 2.0
_GAP_LAND_M = 1.0  # solid ring between two gaps: room for a whole go2 body
_OBSTACLE_SIDE_M = (0.2, 0.6)  # box side lengths, drawn uniformly per side

# MuJoCo contact softness at deformability 0 and 1: solref (timeconst_s, dampratio) and
# solimp (dmin, dmax, width_m, midpoint, power). A single 5 cm sphere comes to rest ~0.4 mm deep on the
# rigid end and ~2 cm deep on the soft end, whatever its mass. timeconst stays >= 2 sim_dt at 1 kHz.
_SOLREF_RIGID = (0.02, 1.0)
_SOLREF_SOFT = (0.2, 1.0)
_SOLIMP_RIGID = (0.9, 0.95, 0.001, 0.5, 2.0)
_SOLIMP_SOFT = (0.2, 0.9, 0.06, 0.5, 2.0)


def _as_kind(kind: TerrainKind | str) -> TerrainKind:
    try:
        return TerrainKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in TerrainKind)
        raise ConfigError(f"terrain.kind = {kind!r} must be one of: {allowed}") from None


@dataclass(frozen=True, kw_only=True)
class TerrainSpec:
    """Everything that determines one tile; `generate(spec)` is a pure function of it."""

    kind: TerrainKind
    difficulty: float = 0.0  # the curriculum level this spec was drawn at, for logging
    friction: float = 1.0  # sliding friction coefficient of the terrain geom
    deformability: float = 0.0  # 0 rigid, 1 softest; see contact_parameters
    slope_rad: float = 0.0  # slope_* pyramids; under rough's bumps too, if set
    roughness_m: float = 0.0  # half-range of the random bumps
    step_height_m: float = 0.05
    step_width_m: float = 0.3  # stair tread depth
    obstacle_density_per_m2: float = 0.0  # boxes per m^2 of tile outside the platform
    obstacle_height_m: float = 0.05
    stone_size_m: float = 0.8  # side of a square stepping stone
    stone_gap_m: float = 0.05  # hole between neighbouring stones
    gap_width_m: float = 0.05
    wave_amplitude_m: float = 0.0  # peak height of the waves above (and depth below) 0
    size_m: float = 8.0  # side of the square tile
    resolution_m: float = 0.05  # height-field sample spacing
    platform_m: float = 1.0  # side of the flat square spawn platform at the centre
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _as_kind(self.kind))
        check_range("terrain.difficulty", self.difficulty, 0.0, 1.0)
        check_range("terrain.friction", self.friction, 0.0, 5.0)
        check_range("terrain.deformability", self.deformability, 0.0, 1.0)
        check_range("terrain.slope_rad", self.slope_rad, 0.0, 0.8)
        check_range("terrain.roughness_m", self.roughness_m, 0.0, 0.2)
        check_range("terrain.step_height_m", self.step_height_m, 0.0, 0.3)
        check_range("terrain.step_width_m", self.step_width_m, 0.1, 2.0)
        check_range("terrain.obstacle_density_per_m2", self.obstacle_density_per_m2, 0.0, 10.0)
        check_range("terrain.obstacle_height_m", self.obstacle_height_m, 0.0, 0.5)
        check_range("terrain.stone_size_m", self.stone_size_m, 0.1, 2.0)
        check_range("terrain.stone_gap_m", self.stone_gap_m, 0.0, 1.0)
        check_range("terrain.gap_width_m", self.gap_width_m, 0.0, 1.0)
        check_range("terrain.wave_amplitude_m", self.wave_amplitude_m, 0.0, 0.5)
        check_range("terrain.size_m", self.size_m, 1.0, 50.0)
        check_range("terrain.resolution_m", self.resolution_m, 0.01, 0.5)
        cells = self.size_m / self.resolution_m
        if abs(cells - round(cells)) > 1e-6 * max(1.0, cells):
            raise ConfigError(f"terrain.size_m / terrain.resolution_m = {cells:.6g} must be a whole number of cells")
        if round(cells) > 4000:
            raise ConfigError(f"terrain.size_m / terrain.resolution_m = {cells:.6g} must be in [1, 4000]")
        check_range("terrain.platform_m", self.platform_m, 0.0, self.size_m)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"terrain.seed = {self.seed!r} must be an integer in [0, 2**63 - 1]")

    @property
    def samples_per_side(self) -> int:
        """Grid points along x and along y; the outermost lie on the tile's edges."""
        return round(self.size_m / self.resolution_m) + 1


def _lerp_table(name: str, difficulty: float) -> float:
    easy, hard = DIFFICULTY_TABLE[name]
    return easy + difficulty * (hard - easy)


def terrain_spec(
    kind: TerrainKind | str, difficulty: float, seed: int = 0, size_m: float = 8.0, resolution_m: float = 0.05
) -> TerrainSpec:
    """The spec of a `kind` tile at `difficulty` in [0, 1], read off DIFFICULTY_TABLE by linear interpolation."""
    kind = _as_kind(kind)
    check_range("terrain.difficulty", difficulty, 0.0, 1.0)
    used = set(KIND_PARAMETERS[kind]) | set(_CONTACT_PARAMETERS)
    values = {name: _lerp_table(name, difficulty if name in used else 0.0) for name in DIFFICULTY_TABLE}
    return TerrainSpec(
        kind=kind, difficulty=float(difficulty), seed=seed, size_m=size_m, resolution_m=resolution_m, **values
    )


def difficulty_table_markdown(levels: Iterable[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> str:
    """DIFFICULTY_TABLE as a Markdown table: one row per parameter, one column per difficulty level."""
    levels = tuple(float(level) for level in levels)
    for level in levels:
        check_range("difficulty_table_markdown.levels", level, 0.0, 1.0)
    users = {name: [k.value for k, names in KIND_PARAMETERS.items() if name in names] for name in DIFFICULTY_TABLE}
    header = "| parameter | " + " | ".join(f"d={level:g}" for level in levels) + " | harder when | kinds |"
    lines = [header, "|" + " --- |" * (len(levels) + 3)]
    for name, (easy, hard) in DIFFICULTY_TABLE.items():
        cells = " | ".join(f"{_lerp_table(name, level):.3g}" for level in levels)
        kinds = "all" if name in _CONTACT_PARAMETERS else ", ".join(users[name])
        lines.append(f"| `{name}` | {cells} | {'higher' if hard > easy else 'lower'} | {kinds} |")
    return "\n".join(lines)


def contact_parameters(deformability: float) -> tuple[np.ndarray, np.ndarray]:
    """MuJoCo `solref` (2,) and `solimp` (5,) of the terrain geom, linear from rigid (0) to softest (1)."""
    check_range("deformability", deformability, 0.0, 1.0)
    solref = np.asarray(_SOLREF_RIGID) + deformability * (np.asarray(_SOLREF_SOFT) - np.asarray(_SOLREF_RIGID))
    solimp = np.asarray(_SOLIMP_RIGID) + deformability * (np.asarray(_SOLIMP_SOFT) - np.asarray(_SOLIMP_RIGID))
    return solref, solimp


def _bilinear(grid: np.ndarray, spacing_m: float, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """Bilinear samples of a centred grid (row along y, column along x); points beyond it take the edge value."""
    rows, cols = grid.shape
    u = np.clip(np.asarray(x_m, dtype=np.float64) / spacing_m + (cols - 1) / 2, 0.0, cols - 1)
    v = np.clip(np.asarray(y_m, dtype=np.float64) / spacing_m + (rows - 1) / 2, 0.0, rows - 1)
    j0 = np.minimum(np.floor(u).astype(np.intp), max(cols - 2, 0))
    i0 = np.minimum(np.floor(v).astype(np.intp), max(rows - 2, 0))
    j1, i1 = np.minimum(j0 + 1, cols - 1), np.minimum(i0 + 1, rows - 1)
    fu, fv = u - j0, v - i0
    g = grid.astype(np.float64, copy=False)
    # h = (1-fv)[(1-fu) h00 + fu h01] + fv[(1-fu) h10 + fu h11]
    return (1 - fv) * ((1 - fu) * g[i0, j0] + fu * g[i0, j1]) + fv * ((1 - fu) * g[i1, j0] + fu * g[i1, j1])


@dataclass(frozen=True)
class TerrainTile:
    """A generated tile: `heights_m` (rows, cols), read-only; heights_m[i, j] lies at
    x = (j - (cols-1)/2) res, y = (i - (rows-1)/2) res, the layout of a MuJoCo hfield."""

    heights_m: np.ndarray
    spec: TerrainSpec
    friction: float
    solref: np.ndarray  # (2,) timeconst_s, dampratio
    solimp: np.ndarray  # (5,) dmin, dmax, width_m, midpoint, power

    @property
    def rows(self) -> int:
        return self.heights_m.shape[0]

    @property
    def cols(self) -> int:
        return self.heights_m.shape[1]

    def height_at(self, x_m: np.ndarray | float, y_m: np.ndarray | float) -> np.ndarray:
        """Ground height, m, at tile coordinates; x_m and y_m broadcast; points off the tile take its edge height."""
        return _bilinear(self.heights_m, self.spec.resolution_m, x_m, y_m)


def _grid(spec: TerrainSpec) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) x and y coordinates of every sample, m."""
    n = spec.samples_per_side
    axis = (np.arange(n) - (n - 1) / 2) * spec.resolution_m
    return np.meshgrid(axis, axis, indexing="xy")


def _relief(rise_m: np.ndarray, upward: bool) -> np.ndarray:
    """Rise above the platform, levelled off at MAX_RELIEF_M; negated for the `*_down` kinds."""
    height = np.minimum(rise_m, MAX_RELIEF_M)
    return height if upward else -height


# A generator maps (spec, x, y, outside, rng) to heights (rows, cols), m; x, y are sample coordinates and
# outside the Chebyshev distance beyond the platform edge (0 on it), m. generate() then zeroes the platform.
_Generator = Callable[[TerrainSpec, np.ndarray, np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _flat(spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(x)


def _rough(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n = math.ceil(spec.size_m / _ROUGH_CELL_M) + 1
    coarse = rng.uniform(-spec.roughness_m, spec.roughness_m, size=(n, n))
    bumps = _bilinear(coarse, _ROUGH_CELL_M, x, y) * np.minimum(outside / _BLEND_M, 1.0)
    return _relief(math.tan(spec.slope_rad) * outside, upward=True) + bumps


def _slope(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    return _relief(math.tan(spec.slope_rad) * outside, upward=spec.kind is TerrainKind.SLOPE_UP)


def _stairs(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    # step k = 1, 2, ... covers (k-1) w < outside <= k w; the tolerance keeps a sample on a riser on the lower step
    steps = np.ceil(outside / spec.step_width_m - 1e-9)
    return _relief(steps * spec.step_height_m, upward=spec.kind is TerrainKind.STAIRS_UP)


def _obstacle_centres(spec: TerrainSpec, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) x, y uniform over the square ring between the platform and the tile edge."""
    p, s = spec.platform_m / 2, spec.size_m / 2
    # the ring as four rectangles: (x_low, x_high, y_low, y_high) of the strips above, below, left, right
    rects = np.array([[-s, s, p, s], [-s, s, -s, -p], [-s, -p, -p, p], [p, s, -p, p]])
    areas = (rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])
    chosen = rects[rng.choice(4, size=count, p=areas / areas.sum())]
    unit = rng.random((count, 2))
    low, high = chosen[:, [0, 2]], chosen[:, [1, 3]]
    return low + unit * (high - low)


def _obstacles(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    heights = np.zeros_like(x)
    count = round(spec.obstacle_density_per_m2 * (spec.size_m**2 - spec.platform_m**2))
    if count == 0:
        return heights
    centres = _obstacle_centres(spec, count, rng)
    half_sides = rng.uniform(*_OBSTACLE_SIDE_M, size=(count, 2)) / 2
    # sample index of coordinate c is c / res + (n - 1) / 2; a box covers the samples within it
    centre_index = (spec.samples_per_side - 1) / 2
    low = np.ceil((centres - half_sides) / spec.resolution_m + centre_index).clip(0, None).astype(np.intp)
    high = (np.floor((centres + half_sides) / spec.resolution_m + centre_index) + 1).clip(0, None).astype(np.intp)
    for (j0, i0), (j1, i1) in zip(low, high):
        heights[i0:i1, j0:j1] = spec.obstacle_height_m
    return heights


def _stepping_stones(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    pitch = spec.stone_size_m + spec.stone_gap_m
    phase_x, phase_y = rng.uniform(0.0, pitch, size=2)
    on_stone = (np.mod(x - phase_x, pitch) < spec.stone_size_m) & (np.mod(y - phase_y, pitch) < spec.stone_size_m)
    return np.where(on_stone, 0.0, -HOLE_DEPTH_M)


def _gaps(spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # rings repeat every gap + land, each starting with its gap: the platform edge is a gap's inner rim
    period = spec.gap_width_m + _GAP_LAND_M
    in_gap = (outside > 0) & (np.mod(outside - 1e-9, period) < spec.gap_width_m)
    return np.where(in_gap, -HOLE_DEPTH_M, 0.0)


def _waves(
    spec: TerrainSpec, x: np.ndarray, y: np.ndarray, outside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    phase_x, phase_y = rng.uniform(0.0, 2 * np.pi, size=2)
    k = 2 * np.pi / _WAVE_LENGTH_M
    # h = A/2 [sin(k x + phi_x) + sin(k y + phi_y)], so |h| <= A
    waves = 0.5 * spec.wave_amplitude_m * (np.sin(k * x + phase_x) + np.sin(k * y + phase_y))
    return waves * np.minimum(outside / _BLEND_M, 1.0)


_GENERATORS: Mapping[TerrainKind, _Generator] = types.MappingProxyType(
    {
        TerrainKind.FLAT: _flat,
        TerrainKind.ROUGH: _rough,
        TerrainKind.SLOPE_UP: _slope,
        TerrainKind.SLOPE_DOWN: _slope,
        TerrainKind.STAIRS_UP: _stairs,
        TerrainKind.STAIRS_DOWN: _stairs,
        TerrainKind.OBSTACLES: _obstacles,
        TerrainKind.STEPPING_STONES: _stepping_stones,
        TerrainKind.GAPS: _gaps,
        TerrainKind.WAVES: _waves,
    }
)


def generate(spec: TerrainSpec) -> TerrainTile:
    """The tile of `spec`: deterministic per `spec.seed`, platform flat at 0, heights within HEIGHT_BOUNDS_M."""
    rng = np.random.default_rng(spec.seed)
    x, y = _grid(spec)
    outside = np.maximum(np.maximum(np.abs(x), np.abs(y)) - spec.platform_m / 2, 0.0)
    heights = _GENERATORS[spec.kind](spec, x, y, outside, rng)
    heights = np.clip(np.where(outside > 1e-9, heights, 0.0), *HEIGHT_BOUNDS_M).astype(np.float32)
    solref, solimp = contact_parameters(spec.deformability)
    for array in (heights, solref, solimp):
        array.flags.writeable = False
    return TerrainTile(heights_m=heights, spec=spec, friction=float(spec.friction), solref=solref, solimp=solimp)
