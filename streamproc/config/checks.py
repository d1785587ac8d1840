"""Cross-reference checks: things one key cannot know about another.

Errors stop a config from loading; warnings are printed by `streamproc validate` only.
"""

from __future__ import annotations

from streamproc.config.heartbeats import NAME_RE, RESERVED_CONTEXT
from streamproc.config.issues import Issue, Source
from streamproc.config.models import Config
from streamproc.config.templates import FIELDS, compile_error
from streamproc.wire.common import MODES, rotation_of


def check_references(config: Config, source: Source) -> list[Issue]:
    issues: list[Issue] = []
    users = config.users

    def need_user(name: str | None, path: tuple[str | int, ...], severity: str = "warning") -> None:
        # Spec §3: only unknown users *targeted by a plan* are errors. Elsewhere (team members,
        # managers, rotations, plan owners; the spec's own example has them) an unknown user
        # resolves to nobody, so it is reported as a warning.
        if name is not None and name not in users:
            message = f"unknown user {name!r}"
            if severity == "warning":
                message += " (resolves to nobody)"
            issues.append(source.issue(path, message, severity))

    for uname, user in users.items():
        for app in user.app_modes:
            if app not in config.applications:
                issues.append(
                    source.issue(("users", uname, "app_modes", app), f"unknown application {app!r}", "warning")
                )
        for i, rule in enumerate(user.downgrade):
            if rule.to not in user.contacts:
                then = (
                    "go by email"
                    if "email" in user.contacts
                    else "become undeliverable (no-contact): there is no email either"
                )
                issues.append(
                    source.issue(
                        ("users", uname, "downgrade", i, "to"),
                        f"user {uname!r} has no {rule.to} contact: messages this rule downgrades {then}",
                        "warning",
                    )
                )

    for tname, team in config.teams.items():
        for i, member in enumerate(team.members):
            need_user(member, ("teams", tname, "members", i))
        need_user(team.manager, ("teams", tname, "manager"))
        for rname, rotation in team.rotations.items():
            for i, member in enumerate(rotation.users):
                need_user(member, ("teams", tname, "rotations", rname, "users", i))
        for i, override in enumerate(team.overrides):
            need_user(override.user, ("teams", tname, "overrides", i, "user"))
            if override.rotation not in team.rotations:
                issues.append(
                    source.issue(
                        ("teams", tname, "overrides", i, "role"),
                        f"team {tname!r} has no rotation {override.rotation!r}",
                    )
                )

    for pname, plan in config.plans.items():
        need_user(plan.owner, ("plans", pname, "owner"))
        if plan.batching is not None:
            # The first wait: the first step's shortest nonzero wait, the soonest one incident pages
            # again. A shorter window never holds two pages of one incident: only many incidents start
            # batching (that may be the intent, hence a warning).
            waits = [n.wait for n in plan.steps[0] if n.wait > 0]
            if waits and plan.batching.window < min(waits):
                issues.append(
                    source.issue(
                        ("plans", pname, "batching", "window"),
                        f"batching window ({plan.batching.window}s) is shorter than the "
                        f"plan's first wait ({min(waits)}s): one incident's pages never fall "
                        "in one window",
                        "warning",
                    )
                )
        for s, step in enumerate(plan.steps):
            if all(n.optional for n in step):
                issues.append(
                    source.issue(("plans", pname, "steps", s), "step has no non-optional notification", "warning")
                )
            for j, note in enumerate(step):
                path: tuple[str | int, ...] = ("plans", pname, "steps", s, j)
                if note.template not in config.templates:
                    issues.append(source.issue((*path, "template"), f"unknown template {note.template!r}"))
                if note.dynamic is not None or note.role is None or note.target is None:
                    continue
                role, target = note.role, note.target
                if role == "user":
                    need_user(target, (*path, "target"), "error")
                    continue
                target_team = config.teams.get(target)
                if target_team is None:
                    issues.append(source.issue((*path, "target"), f"unknown team {target!r}"))
                    continue
                rotation_name = rotation_of(role)
                if rotation_name is not None and rotation_name not in target_team.rotations:
                    issues.append(source.issue((*path, "role"), f"team {target!r} has no rotation {rotation_name!r}"))

    for name, monitor in config.heartbeats.items():
        where: tuple[str | int, ...] = ("heartbeats", name)
        if not NAME_RE.match(name):
            issues.append(
                source.issue(
                    where,
                    f"monitor name {name!r} must be 1-200 letters, digits, '.', '_', "
                    "':' or '-', starting with a letter or digit",
                )
            )
        if monitor.application not in config.applications:
            issues.append(source.issue((*where, "application"), f"unknown application {monitor.application!r}"))
        target_plan = config.plans.get(monitor.plan)
        if target_plan is None:
            issues.append(source.issue((*where, "plan"), f"unknown plan {monitor.plan!r}"))
        elif any(n.dynamic is not None for step in target_plan.steps for n in step):
            issues.append(
                source.issue(
                    (*where, "plan"),
                    f"plan {monitor.plan!r} uses dynamic targets, which a monitor's incident does not have",
                )
            )
        for key in RESERVED_CONTEXT:
            if key in monitor.context:
                issues.append(
                    source.issue(
                        (*where, "context", key),
                        f"{key!r} is set by the monitor when it expires (this value is replaced)",
                        "warning",
                    )
                )

    allowed_modes = {*MODES, "default"}
    for tname, by_app in config.templates.items():
        for app, by_mode in by_app.items():
            if app != "default" and app not in config.applications:
                issues.append(source.issue(("templates", tname, app), f"unknown application {app!r}", "warning"))
            for mode in by_mode:
                if mode not in allowed_modes:
                    expected = ", ".join(sorted(allowed_modes))
                    issues.append(
                        source.issue(
                            ("templates", tname, app, mode), f"unknown mode {mode!r} (expected one of {expected})"
                        )
                    )
    return issues


def check_templates(config: Config, source: Source) -> list[Issue]:
    """Template syntax errors: reported by validate, never fatal at load (spec §3)."""
    issues: list[Issue] = []
    for tname, by_app in config.templates.items():
        for app, by_mode in by_app.items():
            for mode, entry in by_mode.items():
                for name in FIELDS:
                    text = getattr(entry, name)
                    if text is None:
                        continue
                    problem = compile_error(text)
                    if problem:
                        issues.append(
                            source.issue(("templates", tname, app, mode, name), f"template syntax error: {problem}")
                        )
    return issues
