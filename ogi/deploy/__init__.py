"""Deployment: ONNX export with a manifest, the robot-side runtime, and bridges (in-process simulation, DDS).

Names load on first use (PEP 562), so `from ogi.deploy.commands import register` stays as light as the CLI
needs: torch, onnx and cyclonedds are imported only by the commands that use them.
"""

import importlib

_PUBLIC = {
    "Artifact": "ogi.deploy.artifact",
    "ArtifactError": "ogi.deploy.artifact",
    "PolicySession": "ogi.deploy.artifact",
    "load_artifact": "ogi.deploy.artifact",
    "Bridge": "ogi.deploy.bridge",
    "LinkStats": "ogi.deploy.bridge",
    "MotorCommand": "ogi.deploy.bridge",
    "RobotState": "ogi.deploy.bridge",
    "SimBridge": "ogi.deploy.bridge",
    "register": "ogi.deploy.commands",
    "export_policy": "ogi.deploy.export",
    "Runtime": "ogi.deploy.runtime",
    "RuntimeConfig": "ogi.deploy.runtime",
    "SimRobot": "ogi.deploy.sim_robot",
    "SimRobotConfig": "ogi.deploy.sim_robot",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'ogi.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
