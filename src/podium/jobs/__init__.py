"""Async jobs (`Prefer: respond-async`) and the OpenAI Batch API on one durable queue (docs/jobs.md)."""
