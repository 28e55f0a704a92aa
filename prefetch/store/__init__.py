"""Storage adapter: SQLAlchemy 2 tables, repositories, Alembic migrations, the audit log.

Use `make_engine(url)` and `upgrade(url)` from `prefetch.store.db`, the repositories from
`prefetch.store.repositories`, the values from `prefetch.store.records`; the interfaces
and their contracts are in `prefetch.ports`.
"""
