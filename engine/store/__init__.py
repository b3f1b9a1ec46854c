"""The store: schema, migrations, connections, bulk reads and writes, the facts read back for deciding."""
