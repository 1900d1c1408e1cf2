"""Ports: the small Protocols roles depend on. Adapters in `mintlog.adapters` implement them."""
