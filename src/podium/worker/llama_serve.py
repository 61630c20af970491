"""`python -m podium.worker.llama_serve ARGS...`: llama_cpp.server, run unchanged, except that what
this replica cannot do is a 400 naming the field instead of the server's 500.

Why: the llama worker starts the server with `--logits_all false` (a cached prompt would otherwise
copy every prompt token's logits: ~95 MiB per cached 390-token prompt), and llama-cpp-python then
raises a ValueError for OpenAI `logprobs`, which its server answers as a 500 "internal server
error". It is the caller's request the replica cannot serve, so it gets an OpenAI-shaped
`invalid_request_error` with `param: logprobs` (start the worker with `--logprobs` to serve it).
"""

from __future__ import annotations

import re
import runpy
from typing import Any

LOGPROBS_UNSUPPORTED = re.compile(r"logprobs is not supported")
MESSAGE = "logprobs is not supported by this replica: its llama.cpp worker runs without --logprobs"


def logprobs_unsupported(body: Any, match: Any) -> tuple[int, Any]:
    from llama_cpp.server.errors import ErrorResponse

    return 400, ErrorResponse(message=MESSAGE, type="invalid_request_error", param="logprobs", code=None)


def install() -> None:
    """Add the pattern to the server's error table (a class-level dict of regex -> formatter)."""
    from llama_cpp.server.errors import RouteErrorHandler

    RouteErrorHandler.pattern_and_formatters[LOGPROBS_UNSUPPORTED] = logprobs_unsupported


if __name__ == "__main__":
    install()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
