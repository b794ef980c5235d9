"""Export fidelity (ONNX == torch), the manifest's content, and refusal of tampered artifacts."""

import json

import numpy as np
import onnx
import pytest
import torch

from ogi.deploy.artifact import ArtifactError, PolicySession, load_artifact, manifest_sha256
from ogi.deploy.export import PolicyGraph, export_onnx, torch_reference
from ogi.policies import ActorConfig, EmpiricalNormalizer, make_actor
from ogi.robots import get_robot

from .conftest import PRETRAINED


def test_onnx_matches_torch_over_1000_recurrent_steps(exported, one_torch_thread):
    session = PolicySession(load_artifact(exported))
    step, _ = torch_reference(PRETRAINED)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(1000):
        obs = rng.normal(0.0, 2.0, session.obs_size).astype(np.float32)
        worst = max(worst, float(np.abs(session.step(obs) - step(obs)).max()))
    assert worst < 1e-5
    # the state really is carried: the same observation after a reset gives another action than mid-episode
    mid = session.step(np.zeros(session.obs_size, np.float32))
    session.reset()
    assert np.abs(session.step(np.zeros(session.obs_size, np.float32)) - mid).max() > 1e-4


def test_exported_graph_passes_the_onnx_checker(exported):
    model = onnx.load(str(exported / "policy.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["obs", "state_0"]
    assert [o.name for o in model.graph.output] == ["action", "state_out_0"]


def test_manifest_describes_the_robot_and_the_source(exported):
    manifest = load_artifact(exported).manifest
    go2 = get_robot("go2")
    assert manifest["robot"]["joint_names"] == list(go2.joint_names)
    assert manifest["robot"]["sdk_motor_index"] == list(range(12))  # go2's action order is the SDK's
    assert manifest["robot"]["default_pose_rad"] == list(go2.default_pose)
    assert manifest["action"]["scale_rad"] == go2.action_scale
    assert [f["name"] for f in manifest["observation"]["fields"]] == [
        "base_ang_vel",
        "projected_gravity",
        "command",
        "joint_pos",
        "joint_vel",
        "last_action",
    ]
    assert manifest["observation"]["fields"][0]["scale"] == [0.25] * 3
    assert manifest["control"]["policy_rate_hz"] == 50.0 and manifest["control"]["pd_rate_hz"] == 1000.0
    source = json.loads((PRETRAINED / "manifest.json").read_text())
    assert manifest["source"]["checkpoint_sha256"] == source["checkpoint_sha256"]
    assert manifest["source"]["lineage"] == [source["checkpoint_sha256"]]
    assert manifest["manifest_sha256"] == manifest_sha256(manifest)


def test_a_flipped_byte_in_the_onnx_file_is_refused(artifact_copy):
    path = artifact_copy / "policy.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(artifact_copy)


def test_an_edited_manifest_is_refused(artifact_copy):
    path = artifact_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["action"]["scale_rad"] = 0.5
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="edited"):
        load_artifact(artifact_copy)


def test_a_manifest_that_disagrees_with_the_graph_is_refused(artifact_copy):
    path = artifact_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["policy"]["inputs"][0]["shape"] = [1, 46]
    manifest["observation"]["size"] = 46
    manifest["manifest_sha256"] = manifest_sha256(manifest)  # a consistent hash does not make it right
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="differ from the manifest"):
        load_artifact(artifact_copy)


def test_missing_or_truncated_files_are_refused(artifact_copy):
    path = artifact_copy / "policy.onnx"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="bytes"):
        load_artifact(artifact_copy)
    (artifact_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(artifact_copy)


@pytest.mark.parametrize("kind", ["mlp", "lstm", "transformer", "student"])
def test_export_is_generic_over_actors(kind, tmp_path):
    torch.manual_seed(0)
    # the student reads a 9 x 12 depth image after the 45 proprioceptive values, through its CNN
    obs_dim = 45 + 108 if kind == "student" else 45
    cfg = ActorConfig(kind=kind, depth_height=9, depth_width=12) if kind == "student" else ActorConfig(kind=kind)
    actor = make_actor(obs_dim, 12, cfg).eval()
    normalizer = EmpiricalNormalizer(obs_dim)
    normalizer.update(torch.randn(64, obs_dim) * 3 + 1)
    shapes = export_onnx(actor, normalizer, obs_dim, tmp_path / "p.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    graph = PolicyGraph(actor, normalizer)
    state = tuple(actor.initial_state(1))
    onnx_state = [s.numpy() for s in state]
    for _ in range(20):
        obs = torch.randn(1, obs_dim)
        with torch.no_grad():
            expected = graph(obs, *state)
        got = session.run(None, {"obs": obs.numpy(), **{f"state_{i}": s for i, s in enumerate(onnx_state)}})
        np.testing.assert_allclose(got[0], expected[0].numpy(), atol=1e-5)
        state, onnx_state = expected[1:], got[1:]
    assert len(shapes) == len(actor.state_shapes())


def test_the_manifest_lists_a_depth_image_after_the_proprioception():
    from ogi.deploy.export import observation_fields

    fields = observation_fields(12, depth_pixels=108)
    assert fields[-1]["name"] == "depth_image" and fields[-1]["offset"] == 45 and fields[-1]["size"] == 108
