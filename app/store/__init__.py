"""SQL: the schema and one module per aggregate, plain async functions over asyncpg."""
