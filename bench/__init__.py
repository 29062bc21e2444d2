"""`invites bench`: the load generator, its no-op baseline workflow and the stack it measures."""
