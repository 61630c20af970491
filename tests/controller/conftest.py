"""The controller tests' shared world (a real SQLite store, fake runtime/prober/gateway/clock)."""

from tests.controller.test_controller import world  # noqa: F401  (re-exported as a fixture)
