"""The `uptime` role: monitors checked on schedule (probes in `mintlog.adapters.probes`)."""
