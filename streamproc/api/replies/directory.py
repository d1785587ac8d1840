"""Who is answering: configured users by phone number and by Slack id.

Why a file of its own: every reply route starts by naming the user, by rules (number
normalisation, shared numbers) that do not depend on the vendor's request format.
"""

from __future__ import annotations

import re

from streamproc.config.models import Config


def normalize_phone(number: str) -> str:
    """`+1 (555) 000-0001` -> `+15550000001`: digits and a leading plus (also drops `whatsapp:`)."""
    bare = number.rsplit(":", 1)[-1].strip()
    digits = re.sub(r"\D", "", bare)
    return f"+{digits}" if bare.startswith("+") else digits


def one(users: list[str]) -> str | None:
    """The user when exactly one was found (a shared number or Slack id names nobody)."""
    return users[0] if len(users) == 1 else None


class Directory:
    """Users by phone number (sms and call contacts) and by Slack id."""

    def __init__(self, config: Config) -> None:
        self.phones: dict[str, list[str]] = {}
        self.slack: dict[str, list[str]] = {}
        for name, user in config.users.items():
            for mode in ("sms", "call"):
                number = user.contacts.get(mode)
                if number:
                    users = self.phones.setdefault(normalize_phone(number), [])
                    if name not in users:
                        users.append(name)
            slack_id = user.contacts.get("slack")
            if slack_id:
                self.slack.setdefault(slack_id, []).append(name)

    def by_phone(self, number: str | None) -> list[str]:
        return list(self.phones.get(normalize_phone(number), [])) if number else []

    def by_slack(self, slack_id: str | None) -> list[str]:
        return list(self.slack.get(slack_id, [])) if slack_id else []
