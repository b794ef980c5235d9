"""`config` and `data_manifest` are JSON objects in a manifest; an older writer's string values still load."""

import hashlib
import json

import pytest
import torch

from ogi.checkpoints import (
    CheckpointHashMismatchError,
    CheckpointManifestError,
    json_sha256,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from ogi.checkpoints.format import FORMAT_VERSION


def test_config_and_data_manifest_are_stored_as_json_objects(tmp_path):
    saved = save_checkpoint(
        tmp_path,
        step=10,
        iteration=1,
        weights={"w": torch.ones(2)},
        state={},
        config={"ppo": {"gamma": 0.99}, "sizes": (256, 128)},
        reward_weights={},
        data_manifest={"curriculum": {"level": 2}},
    )
    stored = json.loads(saved.manifest_path.read_text())
    assert stored["config"] == {"ppo": {"gamma": 0.99}, "sizes": [256, 128]}
    assert stored["data_manifest"] == {"curriculum": {"level": 2}}
    # the hash is of the canonical JSON dump: sorted keys, no whitespace
    canonical = b'{"ppo":{"gamma":0.99},"sizes":[256,128]}'
    assert stored["config_sha256"] == hashlib.sha256(canonical).hexdigest()


def _old_style_checkpoint(directory, config_text, data_text):
    """A checkpoint as an older writer left it: config and data_manifest as strings, hashed as stored."""
    directory.mkdir(parents=True)
    weights = save_checkpoint(
        directory / "scratch",
        step=0,
        iteration=0,
        weights={"w": torch.arange(3.0)},
        state={},
        config={},
        reward_weights={},
        data_manifest={},
    )
    for name in ("weights.safetensors", "state.safetensors"):
        (directory / name).write_bytes((weights.path / name).read_bytes())
    manifest = {
        "format_version": FORMAT_VERSION,
        "step": 4096,
        "iteration": 2,
        "created_utc": "2025-01-01T00:00:00+00:00",
        "weights_sha256": weights.manifest["weights_sha256"],
        "weights_bytes": weights.manifest["weights_bytes"],
        "state_sha256": weights.manifest["state_sha256"],
        "state_bytes": weights.manifest["state_bytes"],
        "config": config_text,
        "config_sha256": json_sha256(config_text),
        "reward_weights": {"vel": 1.0},
        "data_manifest": data_text,
        "data_sha256": json_sha256(data_text),
        "parent": None,
        "parent_path": None,
        "eval_scores": {},
    }
    manifest["checkpoint_sha256"] = json_sha256(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def test_an_old_manifest_with_python_repr_strings_still_loads(tmp_path):
    config = {"env": {"robot": "go2", "num_envs": 16}, "actor": {"hidden_sizes": (256, 128)}, "seed": 0}
    data = {"curriculum": {"level": 3}, "learning_rate": 3e-4, "done": True, "note": None}
    old = _old_style_checkpoint(tmp_path / "old", repr(config), repr(data))
    assert json.loads((old / "manifest.json").read_text())["config"].startswith("{'env':")

    checkpoint = verify_checkpoint(old)[0]
    assert checkpoint.config == {
        "env": {"robot": "go2", "num_envs": 16},
        "actor": {"hidden_sizes": [256, 128]},
        "seed": 0,
    }
    loaded = load_checkpoint(old)
    assert loaded.data_manifest == {"curriculum": {"level": 3}, "learning_rate": 3e-4, "done": True, "note": None}
    assert torch.equal(loaded.weights["w"], torch.arange(3.0))
    # the manifest object itself stays as stored, so its hashes can be re-derived from it
    assert isinstance(loaded.manifest["config"], str)


def test_an_old_manifest_with_json_strings_still_loads(tmp_path):
    old = _old_style_checkpoint(tmp_path / "old", json.dumps({"seed": 1}), json.dumps({"level": 0}))
    assert load_checkpoint(old).checkpoint.config == {"seed": 1}


def test_an_old_string_is_still_hash_checked_and_never_evaluated_as_code(tmp_path):
    edited = _old_style_checkpoint(tmp_path / "edited", repr({"seed": 0}), repr({}))
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["config"] = repr({"seed": 1})
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointHashMismatchError, match="checkpoint_sha256"):
        load_checkpoint(edited)

    code = _old_style_checkpoint(tmp_path / "code", "__import__('os').getcwd()", repr({}))
    with pytest.raises(CheckpointManifestError, match="config is a string that is not a JSON object"):
        load_checkpoint(code)
    listed = _old_style_checkpoint(tmp_path / "list", "[1, 2]", repr({}))
    with pytest.raises(CheckpointManifestError, match="spells a list"):
        verify_checkpoint(listed)
