"""Errors a user can cause: each carries one sentence saying what was wrong and how to fix it."""

from __future__ import annotations


class MotionforgeError(Exception):
    """Base class of every error caused by the user's input, config or installed plugins.

    The CLI prints ``error: <message>`` and exits with status 2 for these; anything else is a bug
    and keeps its traceback. The message is kept on one line (newlines from paths or quoted
    reasons become spaces).
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(MotionforgeError):
    """A config value is missing, malformed or out of range."""


class InputError(MotionforgeError):
    """An input file (image, track file, …) is missing, unreadable or malformed."""


class PluginError(MotionforgeError):
    """A plugin failed to load, registered a duplicate name, or returned a malformed value."""


class KernelError(MotionforgeError):
    """A kernel backend was asked for where it cannot run."""


class OutputError(MotionforgeError):
    """An output folder cannot be made or written, or the disk filled up while writing."""


class ResourceError(MotionforgeError):
    """A run needs more memory than the machine has free, or ran out of it."""

