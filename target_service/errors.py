"""Errors the reference service raises on purpose.

    TargetServiceError
    ├── ConfigError        a setting is invalid (one line: field and value)
    └── ModelError         a model could not be trained, loaded or found

Request validation errors are not exceptions of this tree: FastAPI turns them into 4xx
responses in ``target_service.app``.
"""


class TargetServiceError(Exception):
    """Base of every error the reference service raises on purpose."""


class ConfigError(TargetServiceError):
    """A setting is invalid; the message is one line naming the field and the value."""


class ModelError(TargetServiceError):
    """A model could not be trained, loaded or found."""
