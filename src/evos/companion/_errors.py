"""Errors of the companion API. Each carries the ``code`` of its JSON body; ``_api`` maps classes to HTTP status."""

from __future__ import annotations

from evos.errors import RequestError


class CompanionError(RequestError):
    """A request to the companion is wrong; nothing was changed."""

    code = "invalid_request"

    def __init__(self, message: str, code: str | None = None, keep_changes: bool = False) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.keep_changes = keep_changes  # commit what the transaction did before failing (see _db.Database.call)


class UnauthorizedError(CompanionError):
    """No valid credentials: token missing, unknown, expired or revoked (401)."""

    code = "invalid_token"


class ForbiddenError(CompanionError):
    """Valid credentials that do not allow this (missing scope, bad signature on a command...) (403)."""

    code = "forbidden"


class NotFoundError(CompanionError):
    code = "not_found"


class ConflictError(CompanionError):
    code = "conflict"


class GrantError(CompanionError):
    """An OAuth 2.0 token request is refused (RFC 6749 §5.2: status 400, or 401 for bad client credentials)."""

    code = "invalid_grant"


class RateLimitedError(CompanionError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
