"""Configuration: one model (`models.Config`), loaded and validated once (`load_config`)."""

from streamproc.config.loader import ConfigError, Issue, check_config, load_config
from streamproc.config.models import Config

__all__ = ["Config", "ConfigError", "Issue", "check_config", "load_config"]
