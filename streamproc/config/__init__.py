"""Configuration: one model (`models.Config`), loaded and validated once (`load_config`)."""

from streamproc.config.issues import Issue
from streamproc.config.loader import ConfigError, check_config, load_config
from streamproc.config.models import Config

__all__ = ["Config", "ConfigError", "Issue", "check_config", "load_config"]
