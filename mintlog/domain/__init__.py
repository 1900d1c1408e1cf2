"""Pure domain code: events, normalization, keys and scopes. No I/O here."""
