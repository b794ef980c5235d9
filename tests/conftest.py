"""Fixtures shared by every test package."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a whole test module (its module-scoped fixtures included), then as it was.

    On a busy 2-core machine a second torch thread spins and slows these small models tenfold. Use it with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`, so that it starts before the module's other fixtures.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
