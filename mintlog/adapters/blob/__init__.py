"""Blob store adapters: the filesystem (embedded defaults) and S3 (production)."""
