import subprocess
import sys


def test_commands_import_without_torch():
    code = "import sys, ogi.lm, ogi.lm.commands; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_package_names_resolve_lazily_to_the_functions():
    import ogi.lm.best_of_n  # noqa: F401  binds the submodule on the package
    import ogi.lm.pretrain  # noqa: F401

    assert callable(ogi.lm.pretrain) and ogi.lm.pretrain.__module__ == "ogi.lm.pretrain"
    assert callable(ogi.lm.best_of_n) and ogi.lm.best_of_n.__module__ == "ogi.lm.best_of_n"
    for name in ogi.lm.__all__:
        assert getattr(ogi.lm, name).__name__ == name
    assert "train_rlhf" in dir(ogi.lm)
