"""The database: tables (`tables`), async engines (`engine`), Alembic migrations (`migrate`) and
the `Store` (`store`), which takes and returns the plain records of `records`."""
