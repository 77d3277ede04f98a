"""Persistence: SQLAlchemy tables, engine, unit of work, repositories, outbox."""
