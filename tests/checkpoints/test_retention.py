"""Retention keeps the newest checkpoints and the best by eval score; what it prunes still anchors the lineage."""

import json
import shutil

import pytest
import torch

from ogi.checkpoints import (
    PRUNED_FILENAME,
    LineageError,
    Retention,
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    read_pruned,
    save_checkpoint,
    verify_checkpoint,
    verify_lineage,
    verify_path,
)

# mean_return per iteration: the best is iteration 2, long before the newest
RETURNS = {1: 0.5, 2: 9.0, 3: 1.0, 4: 2.0, 5: 3.0, 6: 1.5, 7: 2.5, 8: 0.1}


def _save(run_dir, iteration, parent, scores=None):
    return save_checkpoint(
        run_dir,
        step=100 * iteration,
        iteration=iteration,
        weights={"w": torch.full((3,), float(iteration))},
        state={"rng": torch.arange(4)},
        config={"seed": 0},
        reward_weights={},
        data_manifest={"iteration": iteration},
        eval_scores={"mean_return": RETURNS[iteration]} if scores is None else scores,
        parent=parent,
    )


def _run(run_dir, iterations=8, retention=None):
    """A run that saves every iteration and applies `retention` after each save, as the runner does."""
    parent = None
    for iteration in range(1, iterations + 1):
        parent = _save(run_dir, iteration, parent)
        if retention is not None:
            prune_checkpoints(run_dir, retention)
    return parent


def _iterations(run_dir):
    return [int(path.name) // 100 for path in list_checkpoints(run_dir)]


def test_keeps_the_last_k_and_the_best_by_eval_score(tmp_path):
    _run(tmp_path, retention=Retention(keep_last=3, best_by="mean_return"))
    assert _iterations(tmp_path) == [2, 6, 7, 8]
    pruned = tmp_path / "checkpoints" / "000000100"
    assert sorted(path.name for path in pruned.iterdir()) == [PRUNED_FILENAME]
    record = read_pruned(pruned)
    assert record.step == 100 and record.iteration == 1


def test_lower_is_better_and_keep_all(tmp_path):
    _run(tmp_path / "low", retention=Retention(keep_last=2, best_by="mean_return", higher_is_better=False))
    assert _iterations(tmp_path / "low") == [7, 8]  # the lowest return is the newest's, kept anyway
    _run(tmp_path / "all", retention=Retention(keep_last=0, best_by="mean_return"))
    assert _iterations(tmp_path / "all") == list(range(1, 9))
    with pytest.raises(ValueError, match="keep_last"):
        Retention(keep_last=-1)


def test_kept_checkpoints_verify_and_their_chains_end_at_a_pruned_parent(tmp_path):
    newest = _run(tmp_path, retention=Retention(keep_last=3, best_by="mean_return"))
    lineage = verify_lineage(newest.path)
    assert [c.iteration for c in lineage.checkpoints] == [8, 7, 6]
    assert lineage.pruned_parent.iteration == 5
    assert lineage.pruned_parent.checkpoint_sha256 == lineage.checkpoints[-1].parent_sha256
    best = verify_lineage(tmp_path / "checkpoints" / "000000200")
    assert [c.iteration for c in best.checkpoints] == [2] and best.pruned_parent.iteration == 1
    assert [c.iteration for c in verify_checkpoint(newest.path)] == [8, 7, 6]
    report = verify_path(tmp_path)
    assert report.ok and len(report.results) == 4


def test_a_pruned_record_naming_another_checkpoint_breaks_the_chain(tmp_path):
    newest = _run(tmp_path, iterations=3, retention=Retention(keep_last=2))
    record_path = tmp_path / "checkpoints" / "000000100" / PRUNED_FILENAME
    record = json.loads(record_path.read_text())
    record["checkpoint_sha256"] = "0" * 64
    record_path.write_text(json.dumps(record))
    with pytest.raises(LineageError, match="replaced"):
        verify_checkpoint(newest.path)
    shutil.rmtree(record_path.parent)  # a parent simply gone is still an error, as before pruning existed
    with pytest.raises(LineageError, match="missing"):
        verify_checkpoint(newest.path)


def test_broken_checkpoints_are_never_pruned_nor_counted(tmp_path):
    newest = _run(tmp_path, iterations=5)
    weights = newest.weights_path
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    pruned = prune_checkpoints(tmp_path, Retention(keep_last=2))
    assert [int(path.name) // 100 for path in pruned] == [1, 2]
    assert _iterations(tmp_path) == [3, 4, 5]  # 5 is broken and left as evidence; 3 and 4 are the newest valid
    with pytest.warns(UserWarning, match="000000500"):
        assert latest_valid_checkpoint(tmp_path).iteration == 4


def test_resume_after_pruning_continues_the_chain(tmp_path):
    retention = Retention(keep_last=2, best_by="mean_return")
    _run(tmp_path, iterations=5, retention=retention)
    latest = latest_valid_checkpoint(tmp_path)
    assert latest.iteration == 5
    loaded = load_checkpoint(latest.path)
    assert torch.equal(loaded.weights["w"], torch.full((3,), 5.0))
    following = _save(tmp_path, 6, latest)
    prune_checkpoints(tmp_path, retention)
    assert _iterations(tmp_path) == [2, 5, 6]
    lineage = verify_lineage(following.path)
    assert [c.iteration for c in lineage.checkpoints] == [6, 5] and lineage.pruned_parent.iteration == 4


def test_a_step_saved_again_after_pruning_replaces_the_record(tmp_path):
    first = _run(tmp_path, iterations=1)
    second = _save(tmp_path, 2, first)
    _save(tmp_path, 3, second)
    prune_checkpoints(tmp_path, Retention(keep_last=1))
    assert read_pruned(second.path) is not None
    again = _save(tmp_path, 2, None, scores={})
    assert read_pruned(again.path) is None and not (again.path / PRUNED_FILENAME).exists()
    assert verify_checkpoint(again.path)[0].checkpoint_sha256 == again.checkpoint_sha256
