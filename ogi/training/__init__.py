"""Training: PPO and its variants, runners, checkpoints."""

__all__: list[str] = []
