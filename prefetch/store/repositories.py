"""The SQLAlchemy adapters for the store's ports (`prefetch.store.ports`), in one place.

Each takes an `Engine` from `prefetch.store.db.make_engine`. Only the composition root
constructs them.
"""

from __future__ import annotations

from prefetch.store.audit import AuditLog
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.runs import RunRepository

__all__ = ["AuditLog", "DispenseRepository", "MandateRepository", "RunRepository"]
