"""Podium: self-hosted serverless AI endpoints."""

__version__ = "0.1.0"
