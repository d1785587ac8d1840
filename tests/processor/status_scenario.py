"""Issue 22: the config, keys and HTTP requests of the status topic's live tests (their stack:
`tests.harness.Stack` with workers and `start_api`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.harness import ApiProcess

APP_KEY = "app-key-0000000001"
OTHER_KEY = "other-key-000000001"
UI_TOKEN = "status-page-token-0123456789"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-token"
PUBLIC = "https://pager.example.com/base"

CONFIG = f"""
applications:
  app: {{key: "{APP_KEY}"}}
  other: {{key: "{OTHER_KEY}"}}
users:
  alice: {{contacts: {{sms: "+15550000001"}}}}
  bob: {{contacts: {{sms: "+15550000002"}}}}
teams:
  db:
    members: [alice, bob]
    manager: bob
    rotations: {{primary: {{users: [alice, bob], start: "2026-01-01T00:00:00Z", shift: 1d}}}}
plans:
  long:
    steps:
      - - {{role: user, target: alice, priority: high, template: t, repeat: 5, wait: 300}}
      - - {{role: user, target: bob, priority: high, template: t}}
  oncall:
    steps:
      - - {{role: oncall, target: db, priority: high, template: t, repeat: 3, wait: 300}}
templates:
  t:
    default:
      default: {{subject: "{{{{ summary }}}}", body: "{{{{ summary }}}} #{{{{ incident.id }}}}"}}
senders:
  twilio: {{account_sid: "{TWILIO_SID}", auth_token: "{TWILIO_TOKEN}", from_number: "+15559990000"}}
api:
  public_url: "{PUBLIC}/"
  ui_token: "{UI_TOKEN}"
"""
"""Pages every 300 s: between an incident's first page and its second nothing happens on its own,
so what is open at any moment of a test is what its events made it."""


def request(api: ApiProcess, path: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(api.url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(
                raw
            ) if raw and resp.headers.get_content_type() == "application/json" else raw
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
