"""Target resolution (spec §3 Targets): role + target + time -> users."""

from __future__ import annotations

from streamproc.config.models import Config, Team
from streamproc.timeutil import US_PER_S, to_us
from streamproc.wire.common import rotation_of


def rotation_holder(team: Team, rotation: str, at_us: int) -> str | None:
    """The holder of a rotation at a time: the last override covering it, else
    `users[floor((t - start) / shift) mod len(users)]` (cyclic in both directions)."""
    for override in reversed(team.overrides):
        if override.rotation == rotation and to_us(override.start) <= at_us < to_us(override.end):
            return override.user
    spec = team.rotations.get(rotation)
    if spec is None:
        return None
    index = (at_us - to_us(spec.start)) // (spec.shift * US_PER_S)
    return spec.users[index % len(spec.users)]


def resolve_targets(config: Config, role: str, target: str, at_us: int) -> list[str]:
    """Active users for a role/target at a time, each at most once, in listed order.
    Unknown teams or users resolve to nobody (the config loader rejects them in plans)."""
    names: list[str | None]
    if role == "user":
        names = [target]
    else:
        team = config.teams.get(target)
        if team is None:
            return []
        if role == "team":
            names = list(team.members)
        elif role == "manager":
            names = [team.manager]
        else:
            rotation = rotation_of(role)
            names = [rotation_holder(team, rotation, at_us)] if rotation else []
    out: list[str] = []
    for name in names:
        if name is None or name in out:
            continue
        user = config.users.get(name)
        if user is not None and user.active:
            out.append(name)
    return out
