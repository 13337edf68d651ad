"""The evos error hierarchy, grouped by who is at fault.

- :class:`RequestError` — the caller asked for something wrong (unknown signal, bad value, not permitted).
  Messages name the path, the value and the rule that was broken.
- :class:`UnavailableError` — the request was fine but the car cannot serve it now (no provider for an
  actuator, broker unreachable).
- :class:`DataError` — a file the user gave us is wrong (bad catalog, bad overlay); names file and entry.

Each server maps these to its status codes in one place (``evos.broker._status`` for gRPC).
"""

from __future__ import annotations


class EvosError(Exception):
    """Base of every error evos raises on purpose; ``path`` names the signal concerned, if any."""

    def __init__(self, message: str = "", path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class RequestError(EvosError):
    """The caller's request is wrong; nothing was changed."""


class UnknownSignalError(RequestError):
    """A path (or pattern) names no signal in the catalog."""


class InvalidArgumentError(RequestError):
    """A request is malformed: bad pattern, wrong entry type for the operation, empty request."""


class InvalidValueError(InvalidArgumentError):
    """A value does not fit the signal's metadata: wrong datatype, out of range, not allowed."""


class NotPermittedError(RequestError):
    """The caller is authenticated but its token does not grant this operation on this path."""


class UnauthenticatedError(RequestError):
    """A token is required but missing, malformed, expired or not signed by the configured key."""


class AlreadyProvidedError(RequestError):
    """An actuator is already claimed by another provider."""


class UnavailableError(EvosError):
    """The request is valid but cannot be served now."""


class NoProviderError(UnavailableError):
    """An actuator has no provider, so nobody could carry out the actuation."""


class BrokerUnreachableError(UnavailableError):
    """A client could not reach the broker at the given address."""


class InternalError(EvosError):
    """Something failed that should not have: a bug, reported instead of silently ignored."""


class DataError(EvosError):
    """A data file (catalog, overlay, ...) is invalid. The message names the file and the entry."""

    def __init__(self, source: str, entry: str | None, problem: str) -> None:
        self.source = source
        self.entry = entry
        self.problem = problem
        where = f"{source}: {entry}" if entry else source
        super().__init__(f"{where}: {problem}")


class CatalogError(DataError):
    """A VSS catalog or overlay file is invalid."""
