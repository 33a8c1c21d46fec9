"""Memory policy names: what this build runs and what is planned."""

from __future__ import annotations

__all__ = ["PLANNED_POLICIES", "POLICIES", "check_policy"]

# What this build runs, and what DESIGN.md names but this build does not run yet.
POLICIES = ("none", "liveness", "liveness+recompute", "liveness+offload", "superneurons")
PLANNED_POLICIES: tuple[str, ...] = ()


def check_policy(policy: str) -> None:
    """ValueError naming the problem for a policy this build cannot run.

    Example:
        >>> check_policy("liveness")
        >>> try:
        ...     check_policy("fastest")
        ... except ValueError as e:
        ...     print("unknown memory policy" in str(e))
        True
    """
    if policy in PLANNED_POLICIES:
        raise ValueError(
            f"memory policy {policy!r} is not available in this build yet; available: "
            f"{', '.join(POLICIES)}"
        )
    if policy not in POLICIES:
        raise ValueError(f"unknown memory policy {policy!r}; choose one of {POLICIES}")
