import shutil
from pathlib import Path

import pytest

PRETRAINED = Path(__file__).resolve().parents[2] / "ogi" / "policies" / "pretrained" / "go2_walk_gru"


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """The shipped go2 walking policy exported once for the session (tests copy it before changing it)."""
    from ogi.deploy.export import export_policy

    out = tmp_path_factory.mktemp("artifact") / "go2_walk"
    export_policy(PRETRAINED, out)
    return out


@pytest.fixture
def artifact_copy(exported, tmp_path) -> Path:
    target = tmp_path / "artifact"
    shutil.copytree(exported, target)
    return target
