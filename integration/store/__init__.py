"""The store: SQLAlchemy tables, Alembic migrations and the queries the pipeline and reports use."""
