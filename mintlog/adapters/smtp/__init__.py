"""SMTP adapters."""
