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


class Targets:
    """`resolve_targets` for one configuration, with what does not depend on time worked out
    once: users, teams and managers, and each rotation's schedule and overrides in µs. The
    engine resolves targets at every step start."""

    def __init__(self, config: Config):
        self._config = config
        self._static: dict[tuple[str, str], tuple[str, ...]] = {}
        self._rotations: dict[tuple[str, str], _Schedule | None] = {}

    def resolve(self, role: str, target: str, at_us: int) -> tuple[str, ...]:
        users = self._static.get((role, target))
        if users is not None:
            return users
        rotation = rotation_of(role)
        if not rotation:  # user, team, manager: the same at any time
            users = self._static[(role, target)] = tuple(resolve_targets(self._config, role, target, at_us))
            return users
        key = (target, rotation)
        if key not in self._rotations:
            team = self._config.teams.get(target)
            self._rotations[key] = _Schedule(team, rotation) if team is not None else None
        schedule = self._rotations[key]
        name = schedule.holder(at_us) if schedule is not None else None
        user = self._config.users.get(name) if name is not None else None
        return (name,) if name is not None and user is not None and user.active else ()


class _Schedule:
    """One rotation of one team, as `rotation_holder` reads it."""

    def __init__(self, team: Team, rotation: str):
        self.overrides = [
            (to_us(o.start), to_us(o.end), o.user) for o in reversed(team.overrides) if o.rotation == rotation
        ]
        spec = team.rotations.get(rotation)
        self.users = list(spec.users) if spec is not None else []
        self.start = to_us(spec.start) if spec is not None else 0
        self.shift = spec.shift * US_PER_S if spec is not None else 0

    def holder(self, at_us: int) -> str | None:
        for start, end, user in self.overrides:
            if start <= at_us < end:
                return user
        if not self.users:
            return None
        return self.users[((at_us - self.start) // self.shift) % len(self.users)]
