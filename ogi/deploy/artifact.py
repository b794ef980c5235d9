"""A deployment artifact on disk (`policy.onnx` + `manifest.json`): loading with every hash checked, and running it.

Loading reads only JSON and the ONNX protobuf (no pickle). It refuses an artifact whose manifest was edited
(its `manifest_sha256` no longer matches), whose ONNX file differs from the recorded size or sha256, or whose
graph's inputs and outputs differ from what the manifest declares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "ogi-policy-artifact"
FORMAT_VERSION = 1
ONNX_FILENAME = "policy.onnx"
FALL_PREDICTOR_FILENAME = "fall_predictor.onnx"
RESIDUAL_FILENAME = "residual.onnx"
MANIFEST_FILENAME = "manifest.json"
_REQUIRED = (
    "format",
    "format_version",
    "robot",
    "observation",
    "action",
    "control",
    "policy",
    "source",
    "manifest_sha256",
)


class ArtifactError(ValueError):
    """An artifact that cannot be trusted or run; the message names the file and what differed."""


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the manifest without its own `manifest_sha256` field."""
    from ogi.checkpoints import json_sha256  # here, not at the top: the robot-side runtime stays off torch

    return json_sha256({k: v for k, v in manifest.items() if k != "manifest_sha256"})


@dataclass(frozen=True)
class Artifact:
    """A verified artifact directory and its manifest (not to be mutated)."""

    path: Path
    manifest: Mapping[str, Any]
    onnx_bytes: bytes
    fall_predictor_bytes: bytes | None = None  # the optional fall predictor's ONNX graph
    residual_bytes: bytes | None = None  # the optional 1 kHz actuator residual's ONNX graph

    @property
    def robot_name(self) -> str:
        return self.manifest["robot"]["name"]

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["robot"]["joint_names"])

    @property
    def num_joints(self) -> int:
        return len(self.manifest["robot"]["joint_names"])

    @property
    def obs_size(self) -> int:
        return int(self.manifest["observation"]["size"])

    def array(self, section: str, key: str) -> np.ndarray:
        return np.asarray(self.manifest[section][key], dtype=np.float64)

    @property
    def state_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(i["shape"]) for i in self.manifest["policy"]["inputs"][1:]]


def load_artifact(path: Path) -> Artifact:
    """Read and verify an artifact directory; raises ArtifactError naming the file and what is wrong."""
    import onnx

    directory = Path(path)
    manifest_path = directory / MANIFEST_FILENAME
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} does not exist (export writes it last)")
    try:
        manifest = json.loads(manifest_path.read_text(), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path} holds a JSON {type(manifest).__name__}, not an object")
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise ArtifactError(f"{manifest_path} lacks the fields {missing}")
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format {manifest['format']!r} version {manifest['format_version']!r}; "
            f"this code reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    actual = manifest_sha256(manifest)
    if actual != manifest["manifest_sha256"]:
        raise ArtifactError(
            f"{manifest_path}: content hashes to {actual[:12]} but manifest_sha256 records "
            f"{str(manifest['manifest_sha256'])[:12]}: the manifest was edited or damaged"
        )
    policy = manifest["policy"]
    data = _section_graph(directory, policy, "policy", onnx)
    _check_consistency(manifest, manifest_path)
    predictor = manifest.get("fall_predictor")
    predictor_data = _section_graph(directory, predictor, "fall predictor", onnx) if predictor else None
    if predictor is not None and predictor["obs_dim"] != manifest["observation"]["size"]:
        raise ArtifactError(
            f"{manifest_path}: fall_predictor.obs_dim {predictor['obs_dim']} differs from the observation size "
            f"{manifest['observation']['size']}"
        )
    residual = manifest.get("residual")
    residual_data = _section_graph(directory, residual, "residual", onnx) if residual else None
    if residual is not None and residual["config"]["num_joints"] != len(manifest["robot"]["joint_names"]):
        raise ArtifactError(f"{manifest_path}: residual.config.num_joints differs from the robot's joints")
    return Artifact(
        path=directory,
        manifest=manifest,
        onnx_bytes=data,
        fall_predictor_bytes=predictor_data,
        residual_bytes=residual_data,
    )


def _section_graph(directory: Path, section: Mapping[str, Any], what: str, onnx: Any) -> bytes:
    """The ONNX graph a manifest section names: present in the directory, hashes matching, inputs and outputs as
    declared."""
    path = directory / str(section.get("file"))
    if Path(section["file"]).name != section["file"] or not path.is_file():
        raise ArtifactError(f"{path}: the {what} file named by the manifest is missing")
    data = _verified_graph(path, section, onnx)
    _check_signature(onnx.load_from_string(data), section, path)
    return data


def _verified_graph(path: Path, section: Mapping[str, Any], onnx: Any) -> bytes:
    """The bytes of an ONNX file whose size and sha256 match its manifest section and that onnx accepts."""
    data = path.read_bytes()
    if len(data) != section["bytes"]:
        raise ArtifactError(f"{path} is {len(data)} bytes but the manifest records {section['bytes']}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != section["sha256"]:
        raise ArtifactError(f"{path} has sha256 {digest[:12]} but the manifest records {section['sha256'][:12]}")
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as err:  # onnx raises its own ValidationError and protobuf DecodeError
        raise ArtifactError(f"{path} is not a valid ONNX model: {err}") from None
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a manifest")


def _check_signature(model: Any, section: Mapping[str, Any], onnx_path: Path) -> None:
    def signature(values) -> list[tuple[str, list[int]]]:
        return [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]

    for kind, graph_values in (("inputs", model.graph.input), ("outputs", model.graph.output)):
        declared = [(v["name"], list(v["shape"])) for v in section[kind]]
        if signature(graph_values) != declared:
            raise ArtifactError(
                f"{onnx_path}: graph {kind} {signature(graph_values)} differ from the manifest's {declared}"
            )


def _check_consistency(manifest: Mapping[str, Any], manifest_path: Path) -> None:
    robot, obs, action = manifest["robot"], manifest["observation"], manifest["action"]
    n = len(robot["joint_names"])
    for key in ("default_pose_rad", "kp", "kd", "torque_limit_nm", "joint_limits_rad"):
        if len(robot[key]) != n:
            raise ArtifactError(f"{manifest_path}: robot.{key} has {len(robot[key])} entries for {n} joints")
    index = robot["sdk_motor_index"]
    if index is not None and sorted(index) != list(range(n)):
        raise ArtifactError(f"{manifest_path}: robot.sdk_motor_index {index} is not a permutation of 0..{n - 1}")
    if sum(f["size"] for f in obs["fields"]) != obs["size"] or action["size"] != n:
        raise ArtifactError(f"{manifest_path}: observation fields or action size disagree with the declared sizes")


def _cpu_session(graph: bytes, threads: int):
    """An onnxruntime session on the CPU with `threads` intra-op threads, run sequentially."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def residual_runner(artifact: Artifact):
    """The artifact's actuator residual (`ogi.controllers.residual.ResidualRunner`) on onnxruntime, one thread."""
    from ogi.controllers.residual import ResidualConfig, ResidualRunner

    if artifact.residual_bytes is None:
        raise ArtifactError(f"{artifact.path}: the artifact carries no residual")
    section = artifact.manifest["residual"]
    session = _cpu_session(artifact.residual_bytes, 1)

    def run(features: np.ndarray) -> np.ndarray:
        return session.run(None, {"features": features})[0]

    return ResidualRunner(ResidualConfig(**section["config"]), artifact.array("robot", "torque_limit_nm"), run)


class PolicySession:
    """The artifact's ONNX graph on onnxruntime (one intra-op thread), carrying its recurrent state.

    `step(obs (obs_size,)) -> action (num_joints,)` float32; `reset()` zeroes the state (a new episode).
    """

    def __init__(self, artifact: Artifact, threads: int = 1):
        self.session = _cpu_session(artifact.onnx_bytes, threads)
        self.obs_size = artifact.obs_size
        self._state_names = [i["name"] for i in artifact.manifest["policy"]["inputs"][1:]]
        self._state_shapes = artifact.state_shapes
        self._outputs = [o["name"] for o in artifact.manifest["policy"]["outputs"]]
        self.reset()

    def reset(self) -> None:
        self.state = [np.zeros(shape, dtype=np.float32) for shape in self._state_shapes]

    def step(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32).reshape(1, self.obs_size)
        feeds = {"obs": obs, **dict(zip(self._state_names, self.state))}
        action, *state = self.session.run(self._outputs, feeds)
        self.state = state
        return action[0]


class FallPredictorSession:
    """The artifact's fall predictor on onnxruntime with its rolling window of policy observations.

    `step(obs (obs_size,)) -> p(fall within horizon_s)`; `reset()` forgets the history (a new episode, or the
    policy taking over again after a fallback).
    """

    def __init__(self, artifact: Artifact, threads: int = 1):
        if artifact.fall_predictor_bytes is None:
            raise ArtifactError(f"{artifact.path}: the artifact carries no fall predictor")
        section = artifact.manifest["fall_predictor"]
        self.session = _cpu_session(artifact.fall_predictor_bytes, threads)
        self.window_size, self.obs_size = int(section["window"]), int(section["obs_dim"])
        self.horizon_s = float(section["horizon_s"])
        self.reset()

    def reset(self) -> None:
        self.window = np.zeros((1, self.window_size, self.obs_size), dtype=np.float32)
        self.valid = np.zeros((1, self.window_size), dtype=np.float32)

    def step(self, obs: np.ndarray) -> float:
        self.window[0, :-1] = self.window[0, 1:]
        self.valid[0, :-1] = self.valid[0, 1:]
        self.window[0, -1] = np.asarray(obs, dtype=np.float32).reshape(self.obs_size)
        self.valid[0, -1] = 1.0
        (probability,) = self.session.run(["fall_probability"], {"window": self.window, "valid": self.valid})
        return float(probability.reshape(-1)[0])
