"""Optimizer and RNG state stored as tensors + JSON restore a run exactly."""

import json

import numpy as np
import pytest
import torch

from ogi.checkpoints import (
    canonical_json,
    latest_valid_checkpoint,
    load_checkpoint,
    numpy_rng_from_state,
    numpy_rng_state,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    save_checkpoint,
)

CONFIG = {"task": "walk"}
REWARD_WEIGHTS = {"vel": 1.0}


def _train(model, optimizer, rng, steps):
    for _ in range(steps):
        # Inputs from the torch RNG, targets from the numpy RNG: both must be restored for an identical resume.
        inputs = torch.randn(8, 3)
        targets = torch.from_numpy(rng.standard_normal((8, 2)).astype(np.float32))
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()


def _fresh_model():
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99), amsgrad=True)


def test_optimizer_and_rng_resume_exactly(tmp_path):
    torch.manual_seed(0)
    model, optimizer = _fresh_model()
    rng = np.random.default_rng(123)
    _train(model, optimizer, rng, 3)

    optim_tensors, optim_structure = optimizer_state_to_tensors(optimizer)
    assert "optim/state/0/exp_avg" in optim_tensors and "optim/state/0/max_exp_avg_sq" in optim_tensors
    saved = save_checkpoint(
        tmp_path,
        step=24,
        iteration=3,
        weights=model.state_dict(),
        state={**optim_tensors, "rng/torch": torch.get_rng_state()},
        config=CONFIG,
        reward_weights=REWARD_WEIGHTS,
        data_manifest={"optimizer": optim_structure, "numpy_rng": numpy_rng_state(rng)},
    )
    _train(model, optimizer, rng, 4)
    uninterrupted = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    torch.manual_seed(999)
    resumed_model, resumed_optimizer = _fresh_model()
    loaded = load_checkpoint(latest_valid_checkpoint(tmp_path).path)
    assert loaded.path == saved.path
    resumed_model.load_state_dict(loaded.weights)
    restored = optimizer_state_from_tensors(loaded.state, loaded.data_manifest["optimizer"])
    assert restored["param_groups"][0]["betas"] == (0.8, 0.99) and sorted(restored["state"]) == [0, 1, 2, 3]
    resumed_optimizer.load_state_dict(restored)
    torch.set_rng_state(loaded.state["rng/torch"])
    resumed_rng = numpy_rng_from_state(loaded.data_manifest["numpy_rng"])
    _train(resumed_model, resumed_optimizer, resumed_rng, 4)

    for name, tensor in resumed_model.state_dict().items():
        assert torch.equal(tensor, uninterrupted[name]), name
    assert resumed_rng.bit_generator.state == rng.bit_generator.state


def test_optimizer_structure_round_trips_awkward_values():
    state_dict = {
        "state": {},
        "param_groups": [
            {
                "params": [0],
                "max_lr": float("inf"),
                "betas": (0.9, 0.95),
                "lr": torch.tensor(0.1),
                "nested": {"a": [1, None, True]},
            }
        ],
    }
    tensors, structure = optimizer_state_to_tensors(state_dict)
    assert list(tensors) == ["optim/param_groups/0/lr"]
    restored = optimizer_state_from_tensors(tensors, json.loads(canonical_json(structure)))
    group = restored["param_groups"][0]
    assert group["max_lr"] == float("inf") and group["betas"] == (0.9, 0.95)
    assert group["nested"] == {"a": [1, None, True]}
    assert torch.equal(group["lr"], torch.tensor(0.1)) and restored["state"] == {}
    with pytest.raises(TypeError, match="optim/param_groups/0/bad"):
        optimizer_state_to_tensors({"param_groups": [{"bad": object()}]})
