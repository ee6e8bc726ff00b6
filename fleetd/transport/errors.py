"""The one exception tree of the transport and driver layers.

Every error names the host and the command it concerns, so a line in a log or a CLI error
says which miner and which request failed.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every error raised while talking to a miner."""

    def __init__(self, message: str, *, host: str = "", command: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.command = command

    def __str__(self) -> str:
        where = self.host or "?"
        if self.command:
            where += f" ({self.command})"
        return f"{where}: {self.message}"


class UnreachableError(DeviceError):
    """Connection refused, no route, reset before any reply."""


class DeviceTimeoutError(DeviceError):
    """Connect or read took longer than allowed."""


class AuthError(DeviceError):
    """Wrong password, expired or refused token, missing privilege."""


class MalformedReplyError(DeviceError):
    """The reply could not be decoded even by the tolerant decoder."""


class CommandRejectedError(DeviceError):
    """The miner answered with an error STATUS for the command."""

    def __init__(self, message: str, *, host: str = "", command: str = "", code: int | None = None) -> None:
        super().__init__(message, host=host, command=command)
        self.code = code


class InvalidCommandError(CommandRejectedError):
    """The firmware does not know the command."""


class AccessDeniedError(CommandRejectedError):
    """The firmware knows the command but refuses it to this client (API write access off)."""


class NotCompliedError(DeviceError):
    """A command was acknowledged but re-reading the miner shows it did not take effect."""


class UnsupportedError(DeviceError):
    """The driver or firmware lacks the capability asked for."""
