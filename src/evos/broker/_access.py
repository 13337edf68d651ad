"""Per-call access control for the gRPC servicers: open, or JWT bearer tokens; and the gRPC entrance's actuations.

An actuation that comes over gRPC from anyone but the car's own apps (on their socket) passes the entrance's
``guard`` (the car refuses what opens it there: that takes a command signed by a paired phone key) and is written
to the audit ``journal`` before the broker carries it out (``evos.broker._journal``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from evos.broker._auth import ALLOW_ALL, Permissions, TokenVerifier
from evos.broker._core import Broker
from evos.broker._journal import Caller, Journal
from evos.errors import EvosError

# Refuses (raises an EvosError naming why) an actuation that may not come in over gRPC; called before the journal.
Guard = Callable[[Mapping[str, Any]], Awaitable[None]]


class Access:
    """Finds the permissions of a gRPC call: everything when authorization is off. Calls over a Unix socket
    are checked by ``apps`` when given (the apps' own tokens, always required there)."""

    def __init__(self, verifier: TokenVerifier | None = None, apps: TokenVerifier | None = None,
                 journal: Journal | None = None, guard: Guard | None = None) -> None:
        self.verifier = verifier
        self.apps = apps
        self.journal = journal
        self.guard = guard

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def _from_apps(self, context: Any) -> bool:
        return self.apps is not None and str(context.peer()).startswith("unix:")

    def permissions(self, context: Any) -> Permissions:
        """Permissions of the caller; raises UnauthenticatedError for a missing or bad token."""
        verifier = self.apps if self._from_apps(context) else self.verifier
        if verifier is None:
            return ALLOW_ALL
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value
                break
        return verifier.verify(header)

    def caller(self, context: Any, perms: Permissions) -> Caller | None:
        """Who asks, as the journal names it; None for the car's own apps on their socket."""
        if self._from_apps(context):
            return None
        user = perms.subject or ("anyone (authorization is off)" if perms is ALLOW_ALL else "a token with no subject")
        return Caller(user, f"gRPC {context.peer()}")

    async def actuate(self, broker: Broker, context: Any, perms: Permissions, targets: Mapping[str, Any]) -> None:
        """``broker.actuate(targets)`` for this call: past the guard and written to the journal first, unless it
        comes from the car's own apps."""
        await self.carry_out(broker, await self.admit(context, perms, targets), targets)

    async def admit(self, context: Any, perms: Permissions, targets: Mapping[str, Any]) -> Caller | None:
        """Who asks for ``targets`` (None: the car's own apps), once past the guard; a refusal is journaled and
        raised."""
        caller = self.caller(context, perms)
        if caller is not None and self.guard is not None:
            try:
                await self.guard(targets)
            except EvosError as exc:
                if self.journal is not None:
                    await self.journal.refused(caller, targets, exc)
                raise
        return caller

    async def carry_out(self, broker: Broker, caller: Caller | None, targets: Mapping[str, Any]) -> None:
        """``broker.actuate(targets)`` for an admitted ``caller``, written to the journal first."""
        if caller is None or self.journal is None:
            await broker.actuate(targets)
        else:
            await self.journal.audited(caller, targets, lambda: broker.actuate(targets))
