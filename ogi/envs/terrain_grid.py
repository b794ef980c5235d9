"""One heightfield holding every (kind, level) terrain tile; each simulation stands on its own tile.

All simulations of a batch share one compiled model whose ground is a single MuJoCo heightfield: a grid
of tiles, terrain kinds along x and difficulty levels along y. A simulation's robot is the only robot in
its world, so any number of simulations can stand on the same tile without meeting. Changing an env's
difficulty is spawning it on another tile at its reset: nothing is regenerated or recompiled, and the
other simulations never wait. Friction and softness differ per tile, so they are written per simulation
(`Batch.expand` of the ground geom's friction, solref and solimp) when an env is placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogi.envs.terrain import TerrainKind, TerrainTile, generate, terrain_spec

# flat margin around the grid: a robot walks up to ~20 m in a 20 s episode, and the edge rows and columns (level 0,
# the first and last kinds) must not end in a drop into nothing; there is no ground beyond the heightfield
BORDER_M = 12.0
HOLE_DEPTH_M = 1.0


@dataclass(frozen=True)
class TerrainGrid:
    """The assembled heightfield and where each tile lies in the world."""

    heights_m: np.ndarray  # (rows, cols) float32, row index along y, column along x
    resolution_m: float
    tile_size_m: float
    kinds: tuple[TerrainKind, ...]
    num_levels: int
    tiles: tuple[tuple[TerrainTile, ...], ...]  # [kind][level]
    border_m: float = BORDER_M

    @property
    def num_kinds(self) -> int:
        return len(self.kinds)

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """(x, y) half sizes of the heightfield, m."""
        rows, cols = self.heights_m.shape
        return (cols - 1) * self.resolution_m / 2, (rows - 1) * self.resolution_m / 2

    def tile_origin(self, kind: np.ndarray, level: np.ndarray) -> np.ndarray:
        """(k, 2) world xy of the centres of tiles (kind, level)."""
        hx, hy = self.half_extent_m
        x = -hx + self.border_m + (np.asarray(kind) + 0.5) * self.tile_size_m
        y = -hy + self.border_m + (np.asarray(level) + 0.5) * self.tile_size_m
        return np.column_stack([x, y])

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        """Ground height, m, at world points (..., 2), by bilinear interpolation of the heightfield."""
        hx, hy = self.half_extent_m
        rows, cols = self.heights_m.shape
        # float32 and flat gathers: depth-camera marching calls this on ~10^5 points per policy step
        col = (xy[..., 0].astype(np.float32) + np.float32(hx)) / np.float32(self.resolution_m)
        row = (xy[..., 1].astype(np.float32) + np.float32(hy)) / np.float32(self.resolution_m)
        np.clip(col, 0.0, cols - 1.001, out=col)
        np.clip(row, 0.0, rows - 1.001, out=row)
        c0 = col.astype(np.int32)
        r0 = row.astype(np.int32)
        fc = col - c0
        fr = row - r0
        idx = r0 * cols + c0
        flat = self._flat
        h00, h01 = flat.take(idx), flat.take(idx + 1)
        h10, h11 = flat.take(idx + cols), flat.take(idx + cols + 1)
        top = h00 + (h01 - h00) * fc
        bottom = h10 + (h11 - h10) * fc
        return (top + (bottom - top) * fr).astype(np.float64)

    @property
    def _flat(self) -> np.ndarray:
        return self.heights_m.reshape(-1)

    def contact_params(self, kind: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Friction (k,), solref (k, 2) and solimp (k, 5) of tiles (kind, level)."""
        tiles = [self.tiles[k][lv] for k, lv in zip(np.asarray(kind).tolist(), np.asarray(level).tolist())]
        return (
            np.array([t.friction for t in tiles]),
            np.array([t.solref for t in tiles]),
            np.array([t.solimp for t in tiles]),
        )


def build_terrain_grid(
    kinds: tuple[str, ...],
    num_levels: int,
    tile_size_m: float,
    resolution_m: float,
    seed: int,
    *,
    difficulty: float | None = None,
    border_m: float = BORDER_M,
) -> TerrainGrid:
    """Generate every tile (level l has difficulty l / (num_levels - 1)) and lay them out in one array.

    difficulty: one difficulty for every tile instead (a single course: `num_levels` 1)."""
    kind_values = tuple(TerrainKind(k) for k in kinds)
    tiles = []
    for k, kind in enumerate(kind_values):
        column = []
        for level in range(num_levels):
            spec = terrain_spec(
                kind,
                level / max(1, num_levels - 1) if difficulty is None else difficulty,
                seed=seed * 1_000_003 + k * 1009 + level,
                size_m=tile_size_m,
                resolution_m=resolution_m,
            )
            column.append(generate(spec))
        tiles.append(tuple(column))
    tile_cells = tiles[0][0].heights_m.shape[0]
    stride = round(tile_size_m / resolution_m)
    border = round(border_m / resolution_m)
    rows = border * 2 + stride * num_levels + 1
    cols = border * 2 + stride * len(kind_values) + 1
    heights = np.zeros((rows, cols), dtype=np.float32)
    for k, column in enumerate(tiles):
        for level, tile in enumerate(column):
            r0 = border + level * stride + (stride + 1 - tile_cells) // 2
            c0 = border + k * stride + (stride + 1 - tile_cells) // 2
            block = tile.heights_m[: min(tile_cells, rows - r0), : min(tile_cells, cols - c0)]
            heights[r0 : r0 + block.shape[0], c0 : c0 + block.shape[1]] = block
    return TerrainGrid(
        heights_m=heights,
        resolution_m=resolution_m,
        tile_size_m=tile_size_m,
        kinds=kind_values,
        num_levels=num_levels,
        tiles=tuple(tiles),
        border_m=border * resolution_m,
    )
