import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from ogi.checkpoints import (
    CheckpointError,
    CheckpointHashMismatchError,
    CheckpointManifestError,
    CheckpointMissingError,
    CheckpointTruncatedError,
    CorruptCheckpointWarning,
    LineageError,
    canonical_json,
    file_sha256,
    json_sha256,
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
    verify_path,
)
from ogi.checkpoints import format as checkpoint_format

CONFIG = {"task": "walk", "ppo": {"gamma": 0.99, "lr": 3e-4}, "obs_scales": (1.0, 0.25)}
REWARD_WEIGHTS = {"vel": 1.0, "stab": 0.5, "torque": -2e-4, "slip": -0.1, "posture": -0.3}


def _save(run_dir, step, parent=None, seed=0, eval_scores=None):
    generator = torch.Generator().manual_seed(seed)
    return save_checkpoint(
        run_dir,
        step=step,
        iteration=step // 100,
        weights={"actor.weight": torch.randn(4, 3, generator=generator), "actor.bias": torch.zeros(4)},
        state={"normalizer/mean": torch.randn(3, generator=generator), "rng/torch": torch.get_rng_state()},
        config=CONFIG,
        reward_weights=REWARD_WEIGHTS,
        data_manifest={"curriculum": {"terrain_level": step // 1000}, "seed": seed},
        eval_scores={"return": 1.5, "fall_rate": 0.1} if eval_scores is None else eval_scores,
        parent=parent,
    )


def _chain(run_dir, steps=(1000, 2000, 3000)):
    chain, parent = [], None
    for step in steps:
        parent = _save(run_dir, step, parent=parent)
        chain.append(parent)
    return chain


def _flip_bit(path, offset=-5):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_hashes_match_hashlib(tmp_path):
    known = tmp_path / "abc.bin"
    known.write_bytes(b"abc")
    assert file_sha256(known) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert canonical_json({"b": 1, "a": [1.5, "\u00e9"]}) == b'{"a":[1.5,"\\u00e9"],"b":1}'
    assert json_sha256({"b": 1, "a": [1.5, "\u00e9"]}) == hashlib.sha256(b'{"a":[1.5,"\\u00e9"],"b":1}').hexdigest()

    checkpoint = _save(tmp_path, 1000)
    manifest = json.loads(checkpoint.manifest_path.read_text())
    weights_bytes = checkpoint.weights_path.read_bytes()
    assert manifest["weights_sha256"] == hashlib.sha256(weights_bytes).hexdigest()
    assert manifest["weights_bytes"] == len(weights_bytes)
    assert manifest["state_sha256"] == hashlib.sha256(checkpoint.state_path.read_bytes()).hexdigest()
    config_text = '{"obs_scales":[1.0,0.25],"ppo":{"gamma":0.99,"lr":0.0003},"task":"walk"}'
    assert manifest["config_sha256"] == hashlib.sha256(config_text.encode()).hexdigest()
    content = {key: value for key, value in manifest.items() if key != "checkpoint_sha256"}
    expected = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert manifest["checkpoint_sha256"] == expected == checkpoint.checkpoint_sha256


def test_save_load_round_trip(tmp_path):
    weights = {"w": torch.randn(5, 2), "half": torch.ones(3, dtype=torch.bfloat16), "count": torch.tensor(7)}
    state = {"optim/step": torch.tensor(3.0), "rng/torch": torch.get_rng_state()}
    saved = save_checkpoint(
        tmp_path,
        step=4096,
        iteration=2,
        weights=weights,
        state=state,
        config=CONFIG,
        reward_weights=REWARD_WEIGHTS,
        data_manifest={"level": np.int64(3)},
    )
    assert saved.path == tmp_path / "checkpoints" / "000004096"
    assert sorted(p.name for p in saved.path.iterdir()) == ["manifest.json", "state.safetensors", "weights.safetensors"]
    loaded = load_checkpoint(saved.path)
    assert loaded.weights.keys() == weights.keys() and loaded.state.keys() == state.keys()
    for name, tensor in {**weights, **state}.items():
        restored = loaded.weights.get(name, loaded.state.get(name))
        assert restored.dtype == tensor.dtype and torch.equal(restored, tensor)
    assert loaded.manifest == saved.manifest
    assert loaded.checkpoint.step == 4096 and loaded.checkpoint.iteration == 2
    assert loaded.checkpoint.config["obs_scales"] == [1.0, 0.25]
    assert loaded.checkpoint.reward_weights == REWARD_WEIGHTS
    assert loaded.data_manifest == {"level": 3}
    assert loaded.checkpoint.eval_scores == {} and loaded.checkpoint.parent_sha256 is None


def test_lineage_of_three_verifies(tmp_path):
    first, second, third = _chain(tmp_path)
    chain = verify_checkpoint(third.path)
    assert [c.checkpoint_sha256 for c in chain] == [c.checkpoint_sha256 for c in (third, second, first)]
    assert third.parent_sha256 == second.checkpoint_sha256 and second.parent_sha256 == first.checkpoint_sha256
    assert first.parent_sha256 is None and third.manifest["parent_path"] == "../000002000"
    assert [c.path for c in chain] == [third.path, second.path, first.path]
    assert list_checkpoints(tmp_path) == [first.path, second.path, third.path]
    assert verify_path(third.path).ok


def test_flipped_bit_in_weights_is_a_hash_mismatch(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    _flip_bit(checkpoint.weights_path)
    with pytest.raises(CheckpointHashMismatchError, match="weights.safetensors") as error:
        verify_checkpoint(checkpoint.path)
    assert checkpoint.manifest["weights_sha256"][:12] in str(error.value)
    assert file_sha256(checkpoint.weights_path)[:12] in str(error.value)
    with pytest.raises(CheckpointHashMismatchError):
        load_checkpoint(checkpoint.path)


def test_truncated_state_is_reported_as_truncation(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    size = checkpoint.state_path.stat().st_size
    checkpoint.state_path.write_bytes(checkpoint.state_path.read_bytes()[: size // 2])
    with pytest.raises(CheckpointTruncatedError, match=f"{size // 2} bytes but the manifest records {size}"):
        verify_checkpoint(checkpoint.path)
    with pytest.raises(CheckpointTruncatedError):
        load_checkpoint(checkpoint.path)


def test_missing_file_and_directory(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    checkpoint.state_path.unlink()
    with pytest.raises(CheckpointMissingError, match="state.safetensors"):
        verify_checkpoint(checkpoint.path)
    with pytest.raises(CheckpointMissingError, match="does not exist"):
        verify_checkpoint(tmp_path / "nowhere")


def test_deleted_parent_breaks_lineage(tmp_path):
    _, second, third = _chain(tmp_path)
    shutil.rmtree(second.path)
    with pytest.raises(LineageError, match="missing") as error:
        verify_checkpoint(third.path)
    assert str(third.manifest_path) in str(error.value) and third.parent_sha256[:12] in str(error.value)
    assert len(verify_checkpoint(third.path, walk_lineage=False)) == 1


def test_tampered_manifest_field_is_a_hash_mismatch(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    manifest = json.loads(checkpoint.manifest_path.read_text())
    manifest["eval_scores"]["return"] = 99.0
    checkpoint.manifest_path.write_text(json.dumps(manifest, indent=2))
    with pytest.raises(CheckpointHashMismatchError, match="checkpoint_sha256"):
        verify_checkpoint(checkpoint.path)


def test_parent_replaced_by_another_valid_checkpoint(tmp_path):
    first, second = _chain(tmp_path / "run", steps=(1000, 2000))
    impostor = _save(tmp_path / "other", 1000, seed=1)
    verify_checkpoint(impostor.path)
    shutil.rmtree(first.path)
    shutil.copytree(impostor.path, first.path)
    with pytest.raises(LineageError, match="replaced") as error:
        verify_checkpoint(second.path)
    assert first.checkpoint_sha256[:12] in str(error.value) and impostor.checkpoint_sha256[:12] in str(error.value)


def test_broken_manifests_are_manifest_errors(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    text = checkpoint.manifest_path.read_text()
    checkpoint.manifest_path.write_text(text[:-10])
    with pytest.raises(CheckpointManifestError, match="not valid JSON"):
        verify_checkpoint(checkpoint.path)
    manifest = json.loads(text)
    checkpoint.manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(CheckpointManifestError, match="format_version 99"):
        verify_checkpoint(checkpoint.path)
    del manifest["state_bytes"]
    checkpoint.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointManifestError, match="state_bytes"):
        verify_checkpoint(checkpoint.path)


def test_latest_valid_checkpoint_skips_a_corrupt_newest(tmp_path):
    assert latest_valid_checkpoint(tmp_path) is None
    _, second, third = _chain(tmp_path)
    assert latest_valid_checkpoint(tmp_path).path == third.path
    _flip_bit(third.weights_path)
    with pytest.warns(CorruptCheckpointWarning, match="000003000.*CheckpointHashMismatchError"):
        latest = latest_valid_checkpoint(tmp_path)
    assert latest.path == second.path and latest.checkpoint_sha256 == second.checkpoint_sha256
    assert third.weights_path.exists() and third.manifest_path.exists()
    report = verify_path(tmp_path)
    assert report.is_run and not report.ok
    assert [result.error is None for result in report.results] == [True, True, False]


def test_crash_before_manifest_leaves_no_valid_checkpoint(tmp_path, monkeypatch):
    first = _save(tmp_path, 1000)
    real_write = checkpoint_format.atomic_write

    def crash_on_manifest(path, data):
        if path.name == "manifest.json":
            raise KeyboardInterrupt("power cut")
        real_write(path, data)

    monkeypatch.setattr(checkpoint_format, "atomic_write", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2000, parent=first)
    monkeypatch.setattr(checkpoint_format, "atomic_write", real_write)
    crashed = tmp_path / "checkpoints" / "000002000"
    assert (crashed / "weights.safetensors").exists() and not (crashed / "manifest.json").exists()
    assert not [p for p in crashed.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(CheckpointMissingError, match="never completed"):
        verify_checkpoint(crashed)
    with pytest.warns(CorruptCheckpointWarning, match="000002000"):
        assert latest_valid_checkpoint(tmp_path).path == first.path
    # The unfinished directory is reused when training reaches that step again.
    assert verify_checkpoint(_save(tmp_path, 2000, parent=first).path)[1].path == first.path


def test_existing_checkpoint_is_never_overwritten(tmp_path):
    checkpoint = _save(tmp_path, 1000)
    before = checkpoint.manifest_path.read_bytes()
    with pytest.raises(CheckpointError, match="never overwritten"):
        _save(tmp_path, 1000, seed=5)
    assert checkpoint.manifest_path.read_bytes() == before
    verify_checkpoint(checkpoint.path)


def test_invalid_inputs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="eval_scores"):
        _save(tmp_path, 1000, eval_scores={"return": float("nan")})
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(
            tmp_path,
            step=-1,
            iteration=0,
            weights={"w": torch.ones(1)},
            state={},
            config={},
            reward_weights={},
            data_manifest={},
        )
    with pytest.raises(ValueError, match="data_manifest"):
        save_checkpoint(
            tmp_path,
            step=1,
            iteration=0,
            weights={"w": torch.ones(1)},
            state={},
            config={},
            reward_weights={},
            data_manifest={"bad": object()},
        )


def test_load_never_unpickles(tmp_path, monkeypatch):
    checkpoint = _save(tmp_path, 1000)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used on a load path")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, forbidden)
    assert load_checkpoint(checkpoint.path).weights["actor.bias"].shape == (4,)


def test_a_copy_beside_a_copy_of_its_parent_verifies_back_through_it(tmp_path):
    from ogi.checkpoints import copy_checkpoint

    parent = _save(tmp_path / "run_a", 100)
    child = _save(tmp_path / "run_b", 200, parent=parent)
    shipped = tmp_path / "shipped"
    shutil.copytree(parent.path, shipped / "parent")
    copy = copy_checkpoint(child.path, shipped / "child", parent=shipped / "parent")
    assert copy.manifest["parent_path"] == "../parent"
    assert (shipped / "child" / "weights.safetensors").read_bytes() == (child.path / "weights.safetensors").read_bytes()
    shutil.rmtree(tmp_path / "run_a")  # the chain no longer needs where it was trained
    chain = verify_checkpoint(shipped / "child")
    assert [c.checkpoint_sha256 for c in chain][-1] == parent.checkpoint_sha256

    other = _save(tmp_path / "run_c", 100, seed=1)
    with pytest.raises(LineageError, match="not the parent"):
        copy_checkpoint(child.path, tmp_path / "wrong", parent=other.path)
    assert not (tmp_path / "wrong").exists()
    with pytest.raises(CheckpointError, match="exists"):
        copy_checkpoint(child.path, shipped / "child", parent=shipped / "parent")
    (child.path / "weights.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError):
        copy_checkpoint(child.path, tmp_path / "from_broken")
    assert not (tmp_path / "from_broken").exists()
