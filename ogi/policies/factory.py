"""`make_actor`: the actor of a config's kind. Apart from the actor classes, so that each kind's module (the student
builds on `Actor`) imports `actors` and nothing imports back."""

from __future__ import annotations

from ogi.policies.actors import Actor, GRUActor, LSTMActor, MLPActor, TransformerActor
from ogi.policies.config import ActorConfig
from ogi.policies.student import StudentActor

ACTOR_CLASSES: dict[str, type[Actor]] = {
    "mlp": MLPActor,
    "gru": GRUActor,
    "lstm": LSTMActor,
    "transformer": TransformerActor,
    "student": StudentActor,
}


def make_actor(obs_dim: int, act_dim: int, cfg: ActorConfig) -> Actor:
    """The actor of kind `cfg.kind` for `obs_dim` observations and `act_dim` actions."""
    return ACTOR_CLASSES[cfg.kind](obs_dim, act_dim, cfg)
