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
    onnx_path = directory / policy["file"]
    if Path(policy["file"]).name != policy["file"] or not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path}: the policy file named by the manifest is missing")
    data = onnx_path.read_bytes()
    if len(data) != policy["bytes"]:
        raise ArtifactError(f"{onnx_path} is {len(data)} bytes but the manifest records {policy['bytes']}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != policy["sha256"]:
        raise ArtifactError(f"{onnx_path} has sha256 {digest[:12]} but the manifest records {policy['sha256'][:12]}")
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises its own ValidationError and protobuf DecodeError
        raise ArtifactError(f"{onnx_path} is not a valid ONNX model: {err}") from None
    _check_signature(model, manifest, onnx_path)
    _check_consistency(manifest, manifest_path)
    return Artifact(path=directory, manifest=manifest, onnx_bytes=data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a manifest")


def _check_signature(model: Any, manifest: Mapping[str, Any], onnx_path: Path) -> None:
    def signature(values) -> list[tuple[str, list[int]]]:
        return [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]

    for kind, graph_values in (("inputs", model.graph.input), ("outputs", model.graph.output)):
        declared = [(v["name"], list(v["shape"])) for v in manifest["policy"][kind]]
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


class PolicySession:
    """The artifact's ONNX graph on onnxruntime (one intra-op thread), carrying its recurrent state.

    `step(obs (obs_size,)) -> action (num_joints,)` float32; `reset()` zeroes the state (a new episode).
    """

    def __init__(self, artifact: Artifact, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(artifact.onnx_bytes, options, providers=["CPUExecutionProvider"])
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
