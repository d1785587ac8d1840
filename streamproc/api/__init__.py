"""`streamproc api`: the HTTP door (aiohttp). Monitoring tools put incidents in; people answer pages.

Stateless: every accepted write becomes an event on `streamproc.incidents` and is answered only
after the broker acknowledged it. Nothing is kept here but a read-only index of who was paged for
what (rebuilt from Kafka at start), so any number of replicas can run behind a load balancer.

Routes, by the package's modules:
    native.py        POST /v1/events                           (bearer application key)
    iris.py          POST /v0/incidents[/{id}[/resolve]]       (Iris HMAC, for irisclient)
    alertmanager.py  POST /v1/integrations/alertmanager        (Alertmanager webhook v4)
    pagerduty.py     POST /v2/enqueue                          (PagerDuty Events API v2)
    replies/         POST /v1/twilio/..., /v1/slack/...        (people answering pages, a file per vendor)
    server.py        /healthz /ready /openapi.json /metrics, middlewares, `run_api`
"""
