"""The `podium` command: Typer commands over the REST API (PODIUM_URL, PODIUM_API_TOKEN)."""
