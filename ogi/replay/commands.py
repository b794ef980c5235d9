"""`ogi replay` and `ogi plot`: thin command-line layers over the replay package."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ogi.rendering import no_opengl_message, offscreen_gl_errors
from ogi.terminal import CHECK_FAILED, fail, print_json

console = Console()


def register(app: typer.Typer) -> None:
    """Add the `replay` and `plot` commands to the `ogi` app."""
    app.command("replay")(replay)
    app.command("plot")(plot)


def replay(
    file: Annotated[Path, typer.Argument(help="Recording (.mcap) written by --record.")],
    check: Annotated[
        bool, typer.Option("--check", help="Re-simulate and compare every step's qpos/qvel bit for bit.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict/--no-strict", help="Refuse a recording made with another MuJoCo version.")
    ] = True,
    sim: Annotated[int, typer.Option(min=0, help="Which simulation of the batch to show or render.")] = 0,
    video: Annotated[
        Path | None, typer.Option(help="Render an MP4 here (offscreen) instead of opening a viewer.")
    ] = None,
    width: Annotated[int, typer.Option(min=16, max=4096, help="Video width, px (even).")] = 640,
    height: Annotated[int, typer.Option(min=16, max=4096, help="Video height, px (even).")] = 480,
    fps: Annotated[float, typer.Option(min=1, max=240, help="Video frames per second.")] = 30.0,
    camera: Annotated[
        str, typer.Option(help="track (follow the base), fixed, or a camera name of the model.")
    ] = "track",
    shadows: Annotated[
        bool, typer.Option("--shadows/--no-shadows", help="Video: shadows and reflections (slow in software GL).")
    ] = True,
    web: Annotated[
        bool | None,
        typer.Option(
            "--web/--native", help="Viewer: Studio web viewer or mujoco.viewer (default: native when DISPLAY is set)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Web viewer port (0: first free in 8080-8099).")] = 0,
    public: Annotated[
        bool, typer.Option("--public", help="Web viewer: listen on all interfaces, not loopback only.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="--check: print the result as JSON.")] = False,
) -> None:
    """Check, watch or render a recording: exact re-simulation, MuJoCo's viewers, or an MP4 video."""
    from ogi.replay import RecordingError
    from ogi.replay.reader import Recording

    try:
        recording = Recording(file)
        recording.check_sim(sim)
        if check:
            raise typer.Exit(_check(recording, strict, as_json))
        if video is not None:
            raise typer.Exit(_video(recording, sim, video, width, height, fps, camera, shadows))
        _view(recording, sim, web, port, public)
    except (RecordingError, ValueError) as err:  # a VersionMismatchError (--strict) is a RecordingError
        fail(err)


def _check(recording, strict: bool, as_json: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from ogi.replay.check import replay_check

    columns = (TextColumn("[bold]replay"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"))
    with Progress(*columns, disable=as_json, transient=True, console=console) as bar:
        task = bar.add_task("replay", total=recording.num_steps)
        result = replay_check(recording, strict=strict, progress=lambda k: bar.update(task, completed=k))
    if as_json:
        print_json(result.as_dict())
    elif result.exact:
        print(
            f"PASS: {result.steps} steps x {len(result.sims)} simulations replayed bit for bit (qpos, qvel) from "
            f"{recording.path}"
        )
    else:
        d = result.first_divergence
        print(
            f"FAIL: first divergence at step {d['step']}, simulation {d['sim']}: {d['field']}[{d['index']}] "
            f"recorded {d['recorded']!r}, replayed {d['replayed']!r} ({result.steps} steps matched before it)"
        )
    return 0 if result.exact else CHECK_FAILED


def _video(recording, sim: int, out: Path, width: int, height: int, fps: float, camera: str, shadows: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ogi.replay.video import VideoConfig, write_video

    cfg = VideoConfig(width=width, height=height, fps=fps, camera=camera, shadows=shadows, reflections=shadows)
    columns = (
        TextColumn("[bold]video"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=True, console=console) as bar:
            task = bar.add_task("video", total=None)
            frames = write_video(
                recording, sim, out, cfg, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    except offscreen_gl_errors() as err:
        fail(no_opengl_message(err))
    print(f"wrote {out}: {frames} frames, {width}x{height} at {fps:g} fps, simulation {sim}")
    return 0


def _view(recording, sim: int, web: bool | None, port: int, public: bool) -> None:
    from ogi.replay import viewer

    if web is None:
        web = not os.environ.get("DISPLAY")
    if not web:
        print(
            f"opening mujoco.viewer on simulation {sim}: space play/pause, left/right step, up/down speed, "
            "backspace rewind",
            flush=True,
        )
        try:
            viewer.run_native(recording, sim)
        except (ImportError, RuntimeError) as err:
            raise ValueError(f"mujoco.viewer cannot open a window ({err}); try --web") from None
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", viewer.UnauthenticatedViewerWarning)
        where = "all network interfaces" if public else "loopback only"

        def announce(url: str) -> None:
            print(
                f"warning: the web viewer has no authentication or encryption; it listens on {where}",
                file=sys.stderr,
                flush=True,
            )
            print(
                f"replay of {recording.path.name}, simulation {sim} of {recording.num_sims}: open {url}  "
                "(Ctrl+C to stop)",
                flush=True,
            )

        try:
            viewer.run_web(recording, sim, port=port, loopback_only=not public, on_url=announce)
        except (RuntimeError, OSError) as err:
            raise ValueError(str(err)) from None


def plot(
    file: Annotated[Path, typer.Argument(help="Recording (.mcap) written by --record.")],
    out: Annotated[Path, typer.Option(help="Directory for the PNG files.")] = Path("plots"),
    sim: Annotated[int, typer.Option(min=0, help="Which simulation of the batch to plot.")] = 0,
) -> None:
    """Plot a recording: commanded vs actual velocity, reward terms, joint torques vs limits, foot contacts, events."""
    from ogi.replay import RecordingError
    from ogi.replay.plots import write_plots
    from ogi.replay.reader import Recording

    try:
        paths = write_plots(Recording(file), out, sim=sim)
    except (RecordingError, ValueError) as err:
        fail(err)
    print(f"wrote {', '.join(str(p) for p in paths)}")
