"""Policies: the actors and critics of the control hierarchy, with their normaliser and Gaussian helpers."""

from ogi.policies.actors import (
    Actor,
    GRUActor,
    LSTMActor,
    MLPActor,
    State,
    TransformerActor,
    build_mlp,
)
from ogi.policies.config import ACTIVATIONS, ACTOR_KINDS, ActorConfig, CriticConfig
from ogi.policies.critic import Critic
from ogi.policies.distributions import gaussian_entropy, gaussian_kl, gaussian_log_prob
from ogi.policies.factory import make_actor
from ogi.policies.normalizer import EmpiricalNormalizer
from ogi.policies.student import DepthEncoder, StudentActor

__all__ = [
    "ACTIVATIONS",
    "ACTOR_KINDS",
    "Actor",
    "ActorConfig",
    "Critic",
    "CriticConfig",
    "DepthEncoder",
    "EmpiricalNormalizer",
    "GRUActor",
    "LSTMActor",
    "MLPActor",
    "State",
    "StudentActor",
    "TransformerActor",
    "build_mlp",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "make_actor",
]
