"""Policies: the actors and critics of the control hierarchy."""

__all__: list[str] = []
