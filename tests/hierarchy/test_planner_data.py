"""Decision datasets round-trip through safetensors + JSON, split without leaking a group, and refuse damage;
episode batches check their numbering and lay decisions out by episode."""

import json

import pytest
import torch

from ogi.hierarchy.planner_data import DecisionDataset, EpisodeBatch
from ogi.validation import ConfigError
from tests.hierarchy.planner_toys import colour_dataset, tiny_planner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset() -> DecisionDataset:
    return colour_dataset(tiny_planner(), 40, seed=0)


def test_round_trip(tmp_path, dataset):
    dataset.save(tmp_path / "decisions")
    loaded = DecisionDataset.load(tmp_path / "decisions")
    assert loaded.texts == dataset.texts and loaded.sha256() == dataset.sha256()
    for name in ("images", "states", "prev_stages", "prompt_ids", "prompt_lengths", "stages", "subgoals", "episodes"):
        assert torch.equal(getattr(loaded, name), getattr(dataset, name))
    assert {p.name for p in (tmp_path / "decisions").iterdir()} == {"decisions.safetensors", "decisions.json"}


def test_damaged_files_raise(tmp_path, dataset):
    directory = tmp_path / "decisions"
    dataset.save(directory)
    tensors = directory / "decisions.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        DecisionDataset.load(directory)
    (directory / "decisions.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="ogi-planner-decisions"):
        DecisionDataset.load(directory)
    with pytest.raises(ValueError, match="missing"):
        DecisionDataset.load(tmp_path / "nowhere")


@pytest.mark.parametrize("by", ["episode", "instruction"])
def test_split_keeps_groups_on_one_side(dataset, by):
    train, heldout = dataset.split(0.3, seed=0, by=by)
    assert len(train) + len(heldout) == len(dataset) and len(heldout) > 0
    key = (lambda d: set(d.episodes.tolist())) if by == "episode" else (lambda d: set(d.texts))
    assert not key(train) & key(heldout)


def test_split_needs_two_groups(dataset):
    one = dataset.subset(torch.nonzero(dataset.episodes == 0).squeeze(1))
    with pytest.raises(ConfigError, match="at least 2"):
        one.split(0.5, seed=0)


def _batch(episodes, index, success):
    count = len(episodes)
    return EpisodeBatch(
        images=torch.zeros(count, 8, 8, 4),
        states=torch.zeros(count, 7),
        prev_stages=torch.zeros(count, dtype=torch.long),
        prompt_ids=torch.zeros(count, 3, dtype=torch.long),
        prompt_lengths=torch.full((count,), 3),
        stages=torch.zeros(count, dtype=torch.long),
        subgoals=torch.zeros(count, dtype=torch.long),
        log_probs=torch.zeros(count),
        episodes=torch.tensor(episodes),
        decision_index=torch.tensor(index),
        unsafe=torch.zeros(count, dtype=torch.bool),
        success=torch.tensor(success),
    )


def test_episode_grid():
    batch = _batch([1, 0, 1, 1, 0], [2, 0, 0, 1, 1], [0.0, 1.0])
    grid, mask = batch.episode_grid(torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0]))
    assert torch.equal(grid, torch.tensor([[20.0, 50.0, 0.0], [30.0, 40.0, 10.0]]))
    assert torch.equal(mask, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]))
    assert torch.equal(batch.ungrid(grid), torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0]))


def test_episode_batch_checks_its_numbering():
    with pytest.raises(ValueError, match="once each"):
        _batch([0, 0], [0, 0], [1.0])
    with pytest.raises(ValueError, match="once each"):
        _batch([0, 0], [0, 2], [1.0])
    with pytest.raises(ValueError, match="no decisions"):
        _batch([0, 0], [0, 1], [1.0, 0.0])
    with pytest.raises(ValueError, match="index"):
        _batch([0, 3], [0, 0], [1.0, 0.0])
