"""Per-call access control for the gRPC servicers: open, or JWT bearer tokens."""

from __future__ import annotations

from typing import Any

from evos.broker._auth import ALLOW_ALL, Permissions, TokenVerifier


class Access:
    """Finds the permissions of a gRPC call: everything when authorization is off. Calls over a Unix socket
    are checked by ``apps`` when given (the apps' own tokens, always required there)."""

    def __init__(self, verifier: TokenVerifier | None = None, apps: TokenVerifier | None = None) -> None:
        self.verifier = verifier
        self.apps = apps

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def permissions(self, context: Any) -> Permissions:
        """Permissions of the caller; raises UnauthenticatedError for a missing or bad token."""
        verifier = self.verifier
        if self.apps is not None and context.peer().startswith("unix:"):
            verifier = self.apps
        if verifier is None:
            return ALLOW_ALL
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value
                break
        return verifier.verify(header)
