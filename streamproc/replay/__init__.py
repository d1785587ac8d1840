"""The replay simulator: the engine on a virtual clock."""

from streamproc.replay.simulator import ReplayReport, replay

__all__ = ["ReplayReport", "replay"]
