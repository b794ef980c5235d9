"""The checkpoints package stays on the ground floor: storage that returns data, with no terminal output."""

import ast
from pathlib import Path

import ogi.checkpoints

PACKAGE = Path(ogi.checkpoints.__file__).parent
GROUND_FLOOR = ("ogi.checkpoints", "ogi.robots", "ogi.validation")
NO_OUTPUT_LIBRARIES = ("rich", "typer")


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            names.append(node.module or "")
    return names


def test_imports_only_from_the_ground_floor_and_no_terminal_libraries():
    files = sorted(PACKAGE.glob("*.py"))
    assert {path.name for path in files} >= {
        "__init__.py",
        "format.py",
        "lineage.py",
        "resume_state.py",
        "retention.py",
    }
    for path in files:
        for name in _imported_modules(path):
            if name == "ogi" or name.startswith("ogi."):
                assert name.startswith(GROUND_FLOOR), f"{path.name} imports {name}"
            assert name.split(".")[0] not in NO_OUTPUT_LIBRARIES, f"{path.name} imports {name}"
        calls = [
            node.func.id
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        ]
        assert "print" not in calls, f"{path.name} prints"


def test_public_names_are_exported():
    for name in ogi.checkpoints.__all__:
        assert getattr(ogi.checkpoints, name) is not None, name
    assert sorted(ogi.checkpoints.__all__) == sorted(set(ogi.checkpoints.__all__))
