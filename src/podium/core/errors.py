"""Errors users see. Every one maps to an HTTP status and the JSON shape
`{"error": {"code", "message", "details"}}`; the CLI prints the message."""

from __future__ import annotations

from typing import Any


def details_list(message: str, details: Any) -> list[dict[str, Any]]:
    """Every error's `details` has one shape, whatever the code: a list of objects, each with a
    `message` and, where one is to blame, a `field` (plus any numbers, e.g. a 409's capacity).
    A client parses one shape; an error with nothing more to say has an empty list."""
    if details is None:
        return []
    items = details if isinstance(details, list) else [details]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            out.append({"message": message, **item} if "message" not in item else dict(item))
        else:
            out.append({"message": str(item)})
    return out


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def plain(message: str) -> str:
    """A validation message without pydantic's Python wording ("Value error, ...")."""
    for prefix in _PYDANTIC_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


class PodiumError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details_list(message, details)

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class Unauthorized(PodiumError):
    status = 401
    code = "unauthorized"


class Forbidden(PodiumError):
    status = 403
    code = "forbidden"


class NotFound(PodiumError):
    status = 404
    code = "not_found"


class Conflict(PodiumError):
    """Capacity that can't be reserved, a name already taken, a state that forbids the call."""

    status = 409
    code = "conflict"


class Invalid(PodiumError):
    """A payload that is well-formed JSON but wrong; `field` names the offending field."""

    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [{"field": field, "message": message}])
        self.field = field


class Unavailable(PodiumError):
    status = 503
    code = "unavailable"


class StorageFull(PodiumError):
    """The database cannot grow (disk or quota full): nothing was written; retry once space is freed."""

    status = 503
    code = "storage_full"


class UnreadableSpec(PodiumError):
    """A stored spec that no longer parses: its endpoint is shown `failed` with this reason, and the
    others keep working."""

    status = 500
    code = "unreadable_spec"
