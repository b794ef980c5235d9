"""The control hierarchy's top: the 5 Hz planner's training stages (pretrain -> SFT -> RL, a success verifier for
best-of-N) and the episodes that play a planner over the walking policy.

Names are loaded on first use (module ``__getattr__``), so importing the package imports neither torch nor MuJoCo.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "planner_data": ("ActFn", "DecisionDataset", "EpisodeBatch", "RolloutFn"),
    "planner_training": (
        "DecisionAccuracy",
        "PlannerPretrainConfig",
        "PlannerPretrainResult",
        "PlannerSFTConfig",
        "PlannerSFTResult",
        "decision_accuracy",
        "pretrain_planner_lm",
        "sft_planner",
    ),
    "plan_critic": ("CriticActor", "CriticConfig", "CriticData", "SelfPlayResult", "load_critic", "self_play"),
    "plan_critic_benchmark": ("compare_with_critic", "critic_benchmark"),
    "planner_rl": ("DecisionPPO", "PlannerRLConfig", "PlannerRLResult", "rl_planner"),
    "planner_verifier": (
        "PlannerVerifier",
        "VerifierConfig",
        "VerifierResult",
        "best_of_n_act",
        "load_verifier",
        "train_verifier",
    ),
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
