"""Language-model pipeline shared by the planner: tokenizer -> pretrain -> SFT -> reward model -> PPO-RLHF with KL,
plus best-of-N sampling with a verifier, all on a generated corpus of robot instructions.

The names below are loaded on first use (module ``__getattr__``), so ``import ogi.lm`` and ``ogi.lm.commands``
do not import torch; the CLI imports the commands at start-up.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_SOURCES = {
    "best_of_n": ("BestOfNReport", "best_of_n", "best_of_n_success", "function_verifier", "reward_model_verifier"),
    "config": (
        "ModelShape",
        "OptimizerConfig",
        "PretrainConfig",
        "RewardConfig",
        "RLHFConfig",
        "SFTConfig",
        "load_config",
    ),
    "corpus": ("Demonstration", "PreferencePair", "is_correct", "plan_score"),
    "data": ("ContextLengthError",),
    "model": ("CausalTransformer", "TransformerConfig", "generate", "parameter_count"),
    "preferences": ("sampled_preference_pairs",),
    "pretrain": ("PretrainResult", "pretrain"),
    "reward_model": ("RewardModel", "RewardResult", "bradley_terry_loss", "train_reward_model"),
    "rlhf": ("RLHFResult", "RLHFTrainer", "train_rlhf"),
    "scaling": ("ComputePlan", "compute_optimal_plan"),
    "schedule": ("learning_rate_at",),
    "sft": ("SFTResult", "supervised_finetune"),
    "store": ("LanguageModelCheckpoint", "load_language_model", "save_language_model"),
    "tokenizer": ("Tokenizer", "train_tokenizer"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``ogi.lm.pretrain`` and ``ogi.lm.best_of_n`` the functions (as the eager package had them) when the
    import system binds the same-named submodules on the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and _MODULE_OF.get(name) == name
            and value.__name__ == f"{__name__}.{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
