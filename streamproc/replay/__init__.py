"""The replay simulator: the engine on a virtual clock."""

from streamproc.replay.simulator import ReplayReport, open_input, parse_lines, replay, replay_events

__all__ = ["ReplayReport", "open_input", "parse_lines", "replay", "replay_events"]
