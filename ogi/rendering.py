"""Offscreen rendering with MuJoCo, and the one place that knows how a missing OpenGL context shows itself.

Ground floor: nothing from `ogi`, and MuJoCo only when a renderer is made, so that a command module of any layer
can name the errors without loading the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mujoco

INSTALL_HINT = "install libegl1 and libgl1-mesa-dri and set MUJOCO_GL=egl"


class OffscreenGLError(RuntimeError):
    """No offscreen OpenGL context could be made; the message says what to install."""


def offscreen_gl_errors() -> tuple[type[BaseException], ...]:
    """What making or using an offscreen renderer raises without OpenGL, for an `except` clause.

    MuJoCo reports a missing context in several ways: an unusable `MUJOCO_GL` is a RuntimeError (at `import mujoco`),
    a missing EGL or OSMesa library an ImportError or an AttributeError on a None library handle, and a context that
    could not be made a `mujoco.FatalError`.
    """
    errors: list[type[BaseException]] = [OffscreenGLError, RuntimeError, ImportError, AttributeError]
    try:
        from mujoco import FatalError

        errors.append(FatalError)
    except ImportError:
        pass
    return tuple(errors)


def no_opengl_message(error: object) -> str:
    """The one-line message for an error `offscreen_gl_errors` caught: what happened and what to install."""
    if isinstance(error, OffscreenGLError):
        return str(error)
    return f"no offscreen OpenGL context ({error}); {INSTALL_HINT}"


def offscreen_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """A `mujoco.Renderer` of `height` x `width` pixels, `model`'s offscreen buffer grown to fit it (in place).

    Raises OffscreenGLError, naming what to install, when no OpenGL context can be made.
    """
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    try:
        import mujoco

        return mujoco.Renderer(model, height, width)
    except offscreen_gl_errors() as error:
        raise OffscreenGLError(no_opengl_message(error)) from error
