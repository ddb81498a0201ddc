"""Storage: schema and migrations, SQL, connections, serialization and blobs."""
