"""The syslog listener of the ingest role: TCP (RFC 6587 framing), UDP and TCP+TLS (docs/ingest.md, "Syslog")."""
