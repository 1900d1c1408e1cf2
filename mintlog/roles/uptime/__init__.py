"""The `uptime` role: monitors checked on schedule (probes in `mintlog.roles.uptime.probes`)."""
