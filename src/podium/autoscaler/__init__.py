"""Autoscaling: pure policies `decide(ctx, now)` and the loop that applies them."""
