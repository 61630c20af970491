"""Errors the data plane answers, in OpenAI's shape so every OpenAI client shows the message.

`{"error": {"message", "type", "code"}}` (plus `param: null` as OpenAI does): the clients map
the HTTP status to an exception class and show `message`; `code` lets scripts branch.
"""

from __future__ import annotations

import orjson

JSON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)


class GatewayError(Exception):
    """A request ends here with `status`; raised anywhere on the hot path before the response starts."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.retry_after = retry_after

    def clone(self) -> GatewayError:
        """A fresh copy, so one error can fail many waiters without sharing a traceback."""
        return GatewayError(self.status, self.message, type=self.type, code=self.code, retry_after=self.retry_after)

    def body(self) -> bytes:
        return orjson.dumps({"error": {"message": self.message, "type": self.type, "param": None, "code": self.code}})

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = list(JSON_HEADERS)
        if self.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(self.retry_after))).encode()))
        return headers


def bad_request(message: str, status: int = 400) -> GatewayError:
    return GatewayError(status, message, code="invalid_request")


def not_found(message: str) -> GatewayError:
    return GatewayError(404, message, code="model_not_found")


def stopped(what: str) -> GatewayError:
    return GatewayError(404, f"{what} is stopped: start the endpoint to serve requests again", code="endpoint_stopped")


def unauthorized() -> GatewayError:
    return GatewayError(
        401,
        "invalid or missing API key: send 'Authorization: Bearer <token>' with the endpoint's token "
        "or a platform token with the inference scope",
        type="authentication_error",
        code="invalid_api_key",
    )


def unavailable(message: str, retry_after: float, code: str) -> GatewayError:
    return GatewayError(503, message, type="server_error", code=code, retry_after=retry_after)


def bad_gateway(message: str, status: int = 502) -> GatewayError:
    return GatewayError(status, message, type="server_error", code="upstream_error")


def rate_limited(retry_after: float) -> GatewayError:
    return GatewayError(
        429,
        "this token's request rate limit is reached: retry after the Retry-After seconds",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        retry_after=retry_after,
    )
