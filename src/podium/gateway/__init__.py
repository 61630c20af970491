"""The data plane (hot path): auth -> route -> activator -> balancer -> proxy, plus stats."""
