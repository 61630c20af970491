"""The control-plane HTTP API: thin FastAPI routers over services."""
