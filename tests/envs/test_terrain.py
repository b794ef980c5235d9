import dataclasses
import math

import mujoco
import numpy as np
import pytest

from ogi.envs.terrain import (
    DIFFICULTY_TABLE,
    HEIGHT_BOUNDS_M,
    HOLE_DEPTH_M,
    KIND_PARAMETERS,
    MAX_RELIEF_M,
    TerrainKind,
    TerrainSpec,
    contact_parameters,
    difficulty_table_markdown,
    generate,
    terrain_spec,
)
from ogi.validation import ConfigError

DIFFICULTIES = (0.0, 0.3, 0.7, 1.0)
RANDOM_KINDS = (TerrainKind.ROUGH, TerrainKind.OBSTACLES, TerrainKind.STEPPING_STONES, TerrainKind.WAVES)


def grid_xy(tile):
    res = tile.spec.resolution_m
    x = (np.arange(tile.cols) - (tile.cols - 1) / 2) * res
    y = (np.arange(tile.rows) - (tile.rows - 1) / 2) * res
    return np.meshgrid(x, y, indexing="xy")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("kind", list(TerrainKind))
def test_every_kind_is_finite_bounded_and_shaped(kind, difficulty):
    tile = generate(terrain_spec(kind, difficulty, seed=7, size_m=8.0, resolution_m=0.05))
    assert tile.heights_m.shape == (161, 161) == (tile.rows, tile.cols)
    assert tile.heights_m.dtype == np.float32
    assert np.isfinite(tile.heights_m).all()
    assert HEIGHT_BOUNDS_M[0] <= tile.heights_m.min() and tile.heights_m.max() <= HEIGHT_BOUNDS_M[1]
    assert not tile.heights_m.flags.writeable


@pytest.mark.parametrize("kind", list(TerrainKind))
def test_platform_is_flat_at_zero(kind):
    spec = terrain_spec(kind, 1.0, seed=3)
    tile = generate(spec)
    x, y = grid_xy(tile)
    on_platform = np.maximum(np.abs(x), np.abs(y)) <= spec.platform_m / 2
    assert on_platform.sum() == 21 * 21
    assert (tile.heights_m[on_platform] == 0.0).all()
    assert tile.height_at(0.0, 0.0) == 0.0


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_random_kinds_are_deterministic_per_seed(kind):
    spec = terrain_spec(kind, 0.5, seed=11)
    np.testing.assert_array_equal(generate(spec).heights_m, generate(spec).heights_m)
    other = generate(dataclasses.replace(spec, seed=12)).heights_m
    assert not np.array_equal(generate(spec).heights_m, other)


@pytest.mark.parametrize("kind", sorted(set(TerrainKind) - set(RANDOM_KINDS)))
def test_structured_kinds_ignore_the_seed(kind):
    spec = terrain_spec(kind, 0.5, seed=11)
    np.testing.assert_array_equal(generate(spec).heights_m, generate(dataclasses.replace(spec, seed=12)).heights_m)


@pytest.mark.parametrize("name", list(DIFFICULTY_TABLE))
def test_every_table_entry_gets_harder_with_difficulty(name):
    easy, hard = DIFFICULTY_TABLE[name]
    assert easy != hard
    users = [kind for kind, names in KIND_PARAMETERS.items() if name in names] or list(TerrainKind)
    levels = np.linspace(0.0, 1.0, 11)
    for kind in users:
        values = np.array([getattr(terrain_spec(kind, d), name) for d in levels])
        hardness = values if hard > easy else -values
        assert (np.diff(hardness) > 0).all(), (kind, values)
        assert values[0] == pytest.approx(easy) and values[-1] == pytest.approx(hard)


def test_table_matches_the_design_ranges():
    assert DIFFICULTY_TABLE["friction"] == (1.0, 0.4)
    assert DIFFICULTY_TABLE["slope_rad"][1] == pytest.approx(0.4)
    assert DIFFICULTY_TABLE["step_height_m"] == (0.05, 0.20)
    assert DIFFICULTY_TABLE["roughness_m"] == (0.0, 0.08)
    assert DIFFICULTY_TABLE["deformability"] == (0.0, 0.8)
    assert terrain_spec("stairs_up", 0.5).step_height_m == pytest.approx(0.125)
    assert terrain_spec("flat", 0.5).friction == pytest.approx(0.7)


def test_unused_parameters_stay_easy():
    spec = terrain_spec(TerrainKind.FLAT, 1.0)
    for name, (easy, _) in DIFFICULTY_TABLE.items():
        if name not in ("friction", "deformability"):
            assert getattr(spec, name) == pytest.approx(easy), name
    assert spec.friction == pytest.approx(0.4) and spec.deformability == pytest.approx(0.8)


def test_geometry_follows_the_spec():
    slope = generate(terrain_spec("slope_up", 0.5))
    # on the +x axis the rise is tan(slope) (x - platform/2); x = 2.0 m is a grid point
    assert slope.height_at(2.0, 0.0) == pytest.approx(math.tan(0.2) * 1.5, abs=1e-6)
    down = generate(terrain_spec("slope_down", 0.5))
    np.testing.assert_allclose(down.heights_m, -slope.heights_m)
    assert generate(terrain_spec("slope_up", 1.0, size_m=20.0)).heights_m.max() == pytest.approx(MAX_RELIEF_M)

    stairs = generate(terrain_spec("stairs_up", 0.5)).heights_m
    step = np.float32(0.125)
    levels = np.unique(stairs)
    np.testing.assert_allclose(levels / step, np.round(levels / step), atol=1e-5)
    row = generate(terrain_spec("stairs_down", 0.5)).height_at(np.array([0.55, 0.8, 0.85, 1.1]), 0.0)
    np.testing.assert_allclose(row, [-0.125, -0.125, -0.25, -0.25], atol=1e-6)

    rough = terrain_spec("rough", 1.0)
    assert np.abs(generate(rough).heights_m).max() <= rough.roughness_m + 1e-6
    waves = terrain_spec("waves", 1.0)
    assert np.abs(generate(waves).heights_m).max() <= waves.wave_amplitude_m + 1e-6

    gaps = generate(terrain_spec("gaps", 1.0))
    np.testing.assert_allclose(gaps.height_at(np.array([0.55, 0.85, 0.95, 1.5]), 0.0), [-1, -1, 0, 0], atol=1e-6)
    for kind in ("gaps", "stepping_stones"):
        assert set(np.unique(generate(terrain_spec(kind, 1.0)).heights_m)) == {np.float32(-HOLE_DEPTH_M), 0.0}


def test_harder_tiles_have_more_holes_and_obstacles():
    def hole_share(d):
        return (generate(terrain_spec("stepping_stones", d, seed=2)).heights_m < 0).mean()

    def obstacle_share(d):
        return (generate(terrain_spec("obstacles", d, seed=2)).heights_m > 0).mean()

    assert hole_share(0.0) < hole_share(0.5) < hole_share(1.0)
    assert obstacle_share(0.0) == 0.0 < obstacle_share(0.5) < obstacle_share(1.0)
    heights = generate(terrain_spec("obstacles", 1.0, seed=2)).heights_m
    assert set(np.unique(heights)) == {0.0, np.float32(0.2)}


def test_height_at_matches_grid_and_interpolates():
    tile = generate(terrain_spec("rough", 1.0, seed=5))
    x, y = grid_xy(tile)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, tile.rows, 50), rng.integers(0, tile.cols, 50)
    np.testing.assert_allclose(tile.height_at(x[i, j], y[i, j]), tile.heights_m[i, j], atol=1e-6)

    h = tile.heights_m.astype(np.float64)
    res = tile.spec.resolution_m
    i, j = 40, 97
    # a quarter of the way along x and half along y: h = 1/2 [3/4 h00 + 1/4 h01] + 1/2 [3/4 h10 + 1/4 h11]
    expected = 0.5 * (0.75 * h[i, j] + 0.25 * h[i, j + 1]) + 0.5 * (0.75 * h[i + 1, j] + 0.25 * h[i + 1, j + 1])
    assert tile.height_at(x[i, j] + 0.25 * res, y[i, j] + 0.5 * res) == pytest.approx(expected, abs=1e-9)
    assert tile.height_at(np.zeros((3, 1)), np.zeros(4)).shape == (3, 4)
    assert tile.height_at(100.0, 0.0) == pytest.approx(tile.heights_m[tile.rows // 2, -1])


@pytest.mark.parametrize(
    "change, field",
    [
        ({"kind": "lava"}, "terrain.kind"),
        ({"difficulty": 1.5}, "terrain.difficulty"),
        ({"friction": -0.1}, "terrain.friction"),
        ({"deformability": float("nan")}, "terrain.deformability"),
        ({"slope_rad": 1.0}, "terrain.slope_rad"),
        ({"obstacle_density_per_m2": 20.0}, "terrain.obstacle_density_per_m2"),
        ({"step_height_m": 0.5}, "terrain.step_height_m"),
        ({"resolution_m": 0.03}, "terrain.size_m / terrain.resolution_m"),
        ({"platform_m": 9.0}, "terrain.platform_m"),
        ({"seed": -1}, "terrain.seed"),
    ],
)
def test_bad_values_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.").replace("/", r"\/")):
        TerrainSpec(**{"kind": TerrainKind.FLAT, **change})


def test_kind_accepts_its_string_value():
    assert TerrainSpec(kind="stairs_down").kind is TerrainKind.STAIRS_DOWN
    assert terrain_spec("gaps", 0.0).kind is TerrainKind.GAPS


def test_markdown_table_lists_every_parameter():
    table = difficulty_table_markdown()
    lines = table.splitlines()
    assert len(lines) == 2 + len(DIFFICULTY_TABLE)
    assert "d=0.25" in lines[0]
    for name in DIFFICULTY_TABLE:
        assert f"`{name}`" in table


def test_contact_parameters_span_rigid_to_soft():
    solref, solimp = contact_parameters(0.0)
    np.testing.assert_allclose(solref, [0.02, 1.0])
    np.testing.assert_allclose(solimp, [0.9, 0.95, 0.001, 0.5, 2.0])
    for d in np.linspace(0.0, 1.0, 11):
        solref, solimp = contact_parameters(d)
        assert solref[0] >= 2 * 0.001  # stable at a 1 kHz physics step
        assert 0 < solimp[0] <= solimp[1] < 1 and solimp[2] > 0
    with pytest.raises(ConfigError, match="deformability"):
        contact_parameters(1.1)


def _fmt(values):
    return " ".join(f"{v:.9g}" for v in np.atleast_1d(values))


def _simulate_box(tile, tilt_rad=0.0):
    """Final displacement and penetration, m, of a 1 kg 10 cm box resting on a plane with the tile's contact."""
    half = 0.05
    xml = f"""
    <mujoco>
      <compiler angle="radian"/>
      <option timestep="0.001"/>
      <worldbody>
        <geom type="plane" size="5 5 0.1" euler="0 {tilt_rad} 0" friction="{_fmt(tile.friction)}"
              solref="{_fmt(tile.solref)}" solimp="{_fmt(tile.solimp)}"/>
        <body pos="{half * math.sin(tilt_rad)} 0 {half * math.cos(tilt_rad)}" euler="0 {tilt_rad} 0">
          <freejoint/>
          <geom type="box" size="{half} {half} {half}" mass="1" friction="0.01"/>
        </body>
      </worldbody>
    </mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    start = data.qpos[:3].copy()
    for _ in range(1000):
        mujoco.mj_step(model, data)
    return np.linalg.norm(data.qpos[:3] - start), half - data.qpos[2]


def test_soft_ground_lets_a_box_sink_deeper():
    def sink(deformability):
        return _simulate_box(generate(TerrainSpec(kind="flat", deformability=deformability)))[1]

    rigid, middle, soft = sink(0.0), sink(0.5), sink(1.0)
    assert rigid < 0.001
    assert rigid < middle < soft and soft > rigid + 0.005


def test_friction_reaches_the_contact():
    # friction combines as the max over the two geoms, and the box's is 0.01, so the plane's decides; tan(0.3) = 0.31
    slid, _ = _simulate_box(generate(TerrainSpec(kind="flat", friction=0.2)), tilt_rad=0.3)
    held, _ = _simulate_box(generate(TerrainSpec(kind="flat", friction=1.0)), tilt_rad=0.3)
    assert slid > 0.3  # a = g (sin 0.3 - 0.2 cos 0.3) = 1.0 m/s^2: ~0.5 m in 1 s
    assert held < 0.005
