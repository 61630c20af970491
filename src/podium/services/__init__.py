"""Use cases: validate, record desired state, wake the controller. No HTTP, no SQL here."""
