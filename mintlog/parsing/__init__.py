"""Parsers shared by the pipeline's normalizer and by every ingest decoder: levels, timestamps, logfmt, JSON
objects written as text, the level and timestamp detection in plain text lines, and per-tenant extraction
rules. Pure code, no I/O."""
