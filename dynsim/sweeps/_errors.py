"""The sweep configuration error, shared by the config parser and the model adapters."""


class ConfigError(ValueError):
    """A sweep configuration is invalid; the message names the key."""
