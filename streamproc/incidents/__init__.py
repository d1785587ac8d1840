"""What is open right now, read from the status topic (`<namespace>.status`; why a topic:
docs/decisions/status-topic.md).

`index.StatusIndex` follows the topic (no consumer group); `command` is `streamproc incidents`;
the API's `/v1/incidents`, `/v0/incidents/{id}` and `/ui` read the same index.
"""
