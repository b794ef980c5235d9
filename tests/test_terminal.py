"""`ogi.terminal`: the error printer, strict JSON and plain tables every verb uses."""

import math
from pathlib import Path

import numpy as np
import pytest

from ogi.terminal import BAD_INPUT, dumps_strict, fail, plain_table, print_error
from tests.strict_json import loads_strict


def test_the_strict_parser_refuses_what_python_writes_by_default():
    import json

    with pytest.raises(ValueError, match="NaN"):
        loads_strict(json.dumps({"x": math.nan}))
    with pytest.raises(ValueError, match="Infinity"):
        loads_strict(json.dumps([-math.inf]))


def test_non_finite_numbers_become_null_and_numpy_becomes_python():
    value = {
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "ok": 1.5,
        "count": 3,
        "flag": True,
        "none": None,
        "np_nan": np.float32("nan"),
        "np_float": np.float64(0.25),
        "np_int": np.int64(7),
        "np_bool": np.bool_(True),
        "array": np.array([1.0, np.inf, 2.0]),
        "pair": (0.5, math.nan),
        "nested": [{"deep": np.float32(np.inf)}],
        "path": Path("runs") / "a",
    }
    assert loads_strict(dumps_strict(value, indent=2)) == {
        "nan": None,
        "inf": None,
        "ninf": None,
        "ok": 1.5,
        "count": 3,
        "flag": True,
        "none": None,
        "np_nan": None,
        "np_float": 0.25,
        "np_int": 7,
        "np_bool": True,
        "array": [1.0, None, 2.0],
        "pair": [0.5, None],
        "nested": [{"deep": None}],
        "path": str(Path("runs") / "a"),
    }


def test_errors_are_plain_unwrapped_lines_on_stderr(capsys):
    message = "x" * 300 + " must be [low, high]; one [[joints]] table per joint [red]not markup[/red]"
    assert print_error(ValueError(message)) == BAD_INPUT == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: {message}\n"


def test_a_key_error_reads_without_its_quotes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        fail(KeyError("unknown robot 'dog'"))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: unknown robot 'dog'\n"


def test_plain_table_aligns_without_truncating():
    text = plain_table(("name", "value"), [("a_very_long_name_" * 10, "1.5"), ("b", "[low, high]")])
    lines = text.splitlines()
    assert lines[0].startswith("name ") and lines[1].startswith("a_very_long_name_" * 10)
    assert lines[2].endswith("[low, high]") and len({len(line) for line in lines}) == 1
