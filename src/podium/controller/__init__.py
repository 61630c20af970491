"""The controller: load -> plan (pure) -> apply, woken at once by hints from the API."""
