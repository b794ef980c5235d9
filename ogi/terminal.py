"""What every `ogi` verb prints: errors in one voice, and JSON that strict parsers accept.

Errors are plain text on stderr, `error: <message>`, one line per line of the message: never read as
markup (a hint such as `[low, high]` or `[[joints]]` stays in the message) and never wrapped at the
terminal's width (a path or a hint is not broken mid-phrase). Exit codes of every verb:

    0  done
    1  a check ran and found a difference (`ogi verify`, `ogi replay --check`)
    2  the command could not do what was asked: bad input, a missing or refused file, no OpenGL context
       (as click's own usage errors)

Standard library only: a ground-floor module, so that the command modules of every layer can use it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, NoReturn

CHECK_FAILED = 1
BAD_INPUT = 2


def error_message(error: object) -> str:
    """The text of an error; a KeyError's message without the quotes `str(KeyError)` adds."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error)


def print_error(error: object) -> int:
    """Print `error: <message>` to stderr, plain and unwrapped; returns BAD_INPUT, the exit code to give."""
    print(f"error: {error_message(error)}", file=sys.stderr, flush=True)
    return BAD_INPUT


def fail(error: object) -> NoReturn:
    """Print the error as `print_error` does and end the command with exit code BAD_INPUT."""
    raise SystemExit(print_error(error))


def plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns separated by two spaces, the first left-aligned and the others right-aligned: text that is never
    truncated or wrapped to the terminal's width (a long line runs on, as in a file)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(
            cell.ljust(width) if k == 0 else cell.rjust(width) for k, (cell, width) in enumerate(zip(line, widths))
        )
        for line in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def strict_value(value: Any) -> Any:
    """`value` with what strict JSON cannot hold replaced: non-finite floats -> None, numpy and torch
    scalars and arrays -> Python numbers and lists (through their `tolist`), tuples -> lists, paths -> str."""
    if isinstance(value, dict):
        return {key: strict_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_value(item) for item in value]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, (str, int, type(None))) and callable(getattr(value, "tolist", None)):
        return strict_value(value.tolist())
    return value


def dumps_strict(value: Any, *, indent: int | None = None) -> str:
    """JSON text any strict parser reads: no NaN or Infinity (they become null), numpy scalars as numbers."""
    return json.dumps(strict_value(value), indent=indent, allow_nan=False)


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """Print `value` to stdout as strict JSON (`dumps_strict`)."""
    print(dumps_strict(value, indent=indent), flush=True)
