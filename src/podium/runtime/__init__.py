"""Runtime backends: where replicas actually run (local processes, docker, ray)."""
