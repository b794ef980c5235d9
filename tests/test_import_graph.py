"""The package's floors hold: a module imports only from its own floor or below, and no modules import in a circle.

Floors, from the ground up (STYLE.md): robots, validation, checkpoints, with the two standard-library helpers
rendering and terminal; controllers, policies, lm; envs; replay; training; hierarchy, deploy; cli.

Imports are read with `ast`, at module level and inside functions alike: a late import is still a dependency, and a
circle that works only because one side imports late is still a circle. Imports under `if TYPE_CHECKING` never run:
they count for floors, not for circles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "ogi"

FLOORS: tuple[tuple[str, ...], ...] = (
    ("robots", "validation", "checkpoints", "rendering", "terminal"),
    ("controllers", "policies", "lm"),
    ("envs",),
    ("replay",),
    ("training",),
    ("hierarchy", "deploy"),
    ("calibration",),
    ("cli",),
)
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}

# (importing module, imported module) pairs allowed across floors, each with its reason. Keep this short.
ALLOWED_UPWARD = {
    # `import ogi` registers the environments with Gymnasium, as a plugin would; the registration module holds only
    # string entry points and imports nothing from ogi, so the package's front door stays as light as its floor.
    ("ogi", "ogi.envs.registration"),
}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. "ogi.envs.rollout"
    target: str  # the deepest ogi module the import names, e.g. "ogi.replay.recorder"
    when: str  # "import": runs at import time; "call": inside a function; "typing": under `if TYPE_CHECKING`
    line: int


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package `__init__`)."""
    out = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The deepest module of `name` that exists: `ogi.envs.walk.WalkVecEnv` -> `ogi.envs.walk`."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _when(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    """When an import runs: "import" (module level, also in a `try` or `if`), "call" or "typing"."""
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return "typing"
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return "call"
        parent = parents.get(parent)
    return "import"


def import_edges(module: str) -> list[Edge]:
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if is_package else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from ogi.envs import observations` names a module; `from ogi.envs import WalkEnv` names the package
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        when = _when(node, parents)
        for target in dict.fromkeys(_resolve(name) for name in names if name == "ogi" or name.startswith("ogi.")):
            if target != module:
                edges.append(Edge(module, target, when, node.lineno))
    return edges


ALL_EDGES = [edge for module in MODULES for edge in import_edges(module)]


def floor_of(module: str) -> int | None:
    """A module's floor from its first component under `ogi`; None for the root package `ogi` itself."""
    parts = module.split(".")
    return FLOOR[parts[1]] if len(parts) > 1 else None


def upward_edges() -> list[Edge]:
    out = []
    for edge in ALL_EDGES:
        if (edge.source, edge.target) in ALLOWED_UPWARD:
            continue
        source, target = floor_of(edge.source), floor_of(edge.target)
        if source is None or target is None:
            # the root package sits below everything (any `import ogi.x` runs it): it may import nothing else
            if source is None:
                out.append(edge)
            continue
        if target > source:
            out.append(edge)
    return out


def module_cycles() -> list[list[str]]:
    """Strongly connected components (more than one module) of the import graph, by Tarjan.

    Imports inside functions count: a circle that only works because one side imports late is still a circle.
    Imports under `if TYPE_CHECKING` do not: they never run.
    """
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in ALL_EDGES:
        if edge.when != "typing":
            graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(edges: list[Edge]) -> str:
    return "\n".join(
        f"  {e.source}:{e.line} -> {e.target} ({e.when})  [floor {floor_of(e.source)} -> {floor_of(e.target)}]"
        for e in edges
    )


# --- the checker itself, on hand-made graphs ---------------------------------------------------------------------


def test_reads_relative_late_and_typing_imports(tmp_path, monkeypatch):
    package = tmp_path / "ogi"
    for folder in ("envs", "training", "replay"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "training" / "runner.py").write_text("")
    (package / "replay" / "recorder.py").write_text("")
    (package / "envs" / "b.py").write_text("")
    (package / "envs" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from ogi.envs.b import thing\n"
        "if TYPE_CHECKING:\n"
        "    from ogi.training import runner\n"
        "def f():\n"
        "    import ogi.replay.recorder\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_ROOT", package)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", _modules())
    edges = {(e.target, e.when) for e in import_edges("ogi.envs.a")}
    assert edges == {("ogi.envs.b", "import"), ("ogi.training.runner", "typing"), ("ogi.replay.recorder", "call")}


def test_finds_a_cycle_of_three(monkeypatch):
    modules = {name: (Path("/dev/null"), False) for name in ("ogi.envs.a", "ogi.envs.b", "ogi.envs.c", "ogi.envs.d")}
    edges = [
        Edge("ogi.envs.a", "ogi.envs.b", "import", 1),
        Edge("ogi.envs.b", "ogi.envs.c", "call", 1),  # a late import still closes the circle
        Edge("ogi.envs.c", "ogi.envs.a", "import", 1),
        Edge("ogi.envs.d", "ogi.envs.a", "import", 1),
        Edge("ogi.envs.a", "ogi.envs.d", "typing", 1),  # never runs
    ]
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    monkeypatch.setattr(sys.modules[__name__], "ALL_EDGES", edges)
    assert module_cycles() == [["ogi.envs.a", "ogi.envs.b", "ogi.envs.c"]]


def test_flags_an_upward_import(monkeypatch):
    edges = [
        Edge("ogi.envs.rollout", "ogi.replay.recorder", "call", 3),
        Edge("ogi.replay.recorder", "ogi.envs.walk", "import", 4),
        Edge("ogi.envs.walk", "ogi.robots.spec", "import", 5),
    ]
    monkeypatch.setattr(sys.modules[__name__], "ALL_EDGES", edges)
    assert upward_edges() == [edges[0]]


# --- the package -------------------------------------------------------------------------------------------------


def test_every_package_has_a_floor():
    packages = {module.split(".")[1] for module in MODULES if module != "ogi"}
    assert packages <= set(FLOOR), f"give these a floor in FLOORS: {sorted(packages - set(FLOOR))}"


def test_no_package_imports_a_higher_floor():
    edges = upward_edges()
    assert not edges, "imports from a higher floor:\n" + _describe(edges)


def test_no_import_cycles():
    cycles = module_cycles()
    assert not cycles, "modules importing each other:\n" + "\n".join("  " + " <-> ".join(cycle) for cycle in cycles)


def test_allowed_exceptions_import_nothing_from_ogi():
    for _, target in ALLOWED_UPWARD:
        assert not import_edges(target), f"{target} must stay free of ogi imports to be importable from any floor"


def _fresh_import(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


# what the robot side may load of the env layer: configs, the observation layout and the gait clock a two-legged
# policy reads, all numpy-only
ROBOT_SIDE_ENV_MODULES = {
    "ogi.envs",
    "ogi.envs.registration",
    "ogi.envs.config",
    "ogi.envs.curriculum",
    "ogi.envs.sensing",
    "ogi.envs.observations",
    "ogi.envs.gait",
}


def test_robot_runtime_stays_off_the_simulator():
    """The robot-side runtime needs the observation layout, not the batched simulator or the env classes."""
    loaded = set(
        _fresh_import(
            "import sys, ogi.deploy.runtime\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('mujoco.batch', 'ogi.envs', 'torch'))))"
        ).split()
    )
    assert "mujoco.batch" not in loaded and "torch" not in loaded
    assert {m for m in loaded if m.startswith("ogi.envs")} <= ROBOT_SIDE_ENV_MODULES


def test_import_ogi_registers_the_envs_by_name_only():
    """`import ogi` registers the Gymnasium ids without loading MuJoCo or torch; making an env loads them."""
    lines = _fresh_import(
        "import sys, ogi, gymnasium\n"
        "prefixes = ('mujoco', 'torch', 'ogi.envs.walk', 'ogi.envs.single')\n"
        "print(sorted(m for m in sys.modules if m.startswith(prefixes)))\n"
        "print(gymnasium.spec('ogi/Go2Walk-v0').entry_point)"
    ).splitlines()
    assert lines == ["[]", "ogi.envs.single:WalkEnv"]


def test_import_ogi_then_make():
    out = _fresh_import(
        "import ogi, gymnasium\n"
        "env = gymnasium.make('ogi/Go2Walk-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, sorted(obs))"
    )
    assert out == "WalkEnv ['policy', 'privileged']"
