"""The one place where evos errors become gRPC status codes (and KUKSA v1 per-entry error codes)."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from evos import errors

log = logging.getLogger("evos.broker")

# (gRPC status, KUKSA v1 Error.code, v1 Error.reason); v1 uses HTTP-like codes in DataEntryError.
_MAP: list[tuple[type[errors.EvosError], grpc.StatusCode, int, str]] = [
    (errors.UnknownSignalError, grpc.StatusCode.NOT_FOUND, 404, "not_found"),
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT, 400, "bad_request"),
    (errors.NotPermittedError, grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden"),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED, 401, "unauthorized"),
    (errors.AlreadyProvidedError, grpc.StatusCode.ALREADY_EXISTS, 409, "already_exists"),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
    (errors.InternalError, grpc.StatusCode.INTERNAL, 500, "internal_error"),
]


def classify(exc: errors.EvosError) -> tuple[grpc.StatusCode, int, str]:
    for cls, status, code, reason in _MAP:
        if isinstance(exc, cls):
            return status, code, reason
    return grpc.StatusCode.INTERNAL, 500, "internal_error"


T = TypeVar("T")


async def permissions_or_abort(access: Any, context: grpc.aio.ServicerContext) -> Any:
    """The caller's permissions, or the call aborted with UNAUTHENTICATED (for streaming handlers)."""
    try:
        return access.permissions(context)
    except errors.EvosError as exc:
        await context.abort(classify(exc)[0], str(exc))
        raise  # unreachable: abort raises


def unary(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn evos errors raised by a unary handler into the matching gRPC status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await method(self, request, context)
        except errors.EvosError as exc:
            await context.abort(classify(exc)[0], str(exc))
            raise  # unreachable: abort raises

    return wrapper


def streaming(method: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """Turn evos errors raised by a streaming handler into the matching gRPC status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[T]:
        try:
            async for item in method(self, request, context):
                yield item
        except errors.EvosError as exc:
            await context.abort(classify(exc)[0], str(exc))

    return wrapper
