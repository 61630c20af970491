"""Your own weights: a registry of uploaded or registered models and LoRA adapters (docs/models.md)."""
