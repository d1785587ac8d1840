"""streamproc: a Kafka-native incident escalation processor."""

__version__ = "0.1.0"
