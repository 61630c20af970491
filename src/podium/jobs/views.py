"""What a job looks like to its client (DESIGN.md, "Async jobs"): the row as JSON, the replica's body
decoded when it is JSON, the webhook's attempts."""

from __future__ import annotations

import json
from typing import Any

from podium.jobs.tables import JobRow


def job_json(row: JobRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "object": "job",
        "endpoint_id": row.endpoint_id,
        "status": row.status,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "attempts": row.attempts,
        "error": row.error,
        "response": response_json(row),
    }
    if row.webhook_url:
        out["webhook"] = {
            "url": row.webhook_url,
            "state": row.webhook_state,
            "attempts": json.loads(row.webhook_attempts or "[]"),
        }
    if row.batch_id:
        out["batch_id"], out["custom_id"] = row.batch_id, row.custom_id
    return out


def response_json(row: JobRow) -> dict[str, Any] | None:
    if row.response_status is None:
        return None
    return {"status_code": row.response_status, "body": decode_body(row.response_type, row.response_body)}


def decode_body(content_type: str | None, body: bytes | None) -> Any:
    """JSON when the replica said JSON (and it parses), else the text."""
    if body is None:
        return None
    if content_type and "json" in content_type:
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body.decode("utf-8", "replace")
