"""Replicas of `maxxit run` sharing one database: leases of market shards and singleton jobs,
claims of work. See DESIGN.md, "one process by default, several replicas on PostgreSQL"."""
