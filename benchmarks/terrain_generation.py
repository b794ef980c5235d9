"""Time `generate` per terrain kind at full difficulty. Prints one JSON object; figures are medians over repeats.

python benchmarks/terrain_generation.py [--size-m 10] [--resolution-m 0.05] [--repeats 21]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from ogi.envs.terrain import TerrainKind, generate, terrain_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-m", type=float, default=10.0)
    parser.add_argument("--resolution-m", type=float, default=0.05)
    parser.add_argument("--difficulty", type=float, default=1.0, help="hardest by default: most obstacles")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()

    median_ms = {}
    for kind in TerrainKind:
        seeds = range(args.repeats)
        specs = [terrain_spec(kind, args.difficulty, seed, args.size_m, args.resolution_m) for seed in seeds]
        generate(specs[0])  # first call pays for imports and allocator warm-up
        times_ms = []
        for spec in specs:
            start = time.perf_counter()
            generate(spec)
            times_ms.append(1e3 * (time.perf_counter() - start))
        median_ms[kind.value] = round(statistics.median(times_ms), 3)

    samples = specs[0].samples_per_side
    print(
        json.dumps(
            {
                "size_m": args.size_m,
                "resolution_m": args.resolution_m,
                "samples": f"{samples}x{samples}",
                "difficulty": args.difficulty,
                "repeats": args.repeats,
                "median_ms": median_ms,
                "max_median_ms": max(median_ms.values()),
                "python": platform.python_version(),
                "machine": platform.processor() or platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
