"""The role kit: what every role is built from (services, loops, the due-work scheduler), and nothing role-specific."""
