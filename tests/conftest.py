"""Shared fixtures: free ports, temporary data dirs, and the project's python."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()
