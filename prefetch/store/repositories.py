"""The SQLAlchemy adapters for the store's ports (`prefetch.ports`), in one place.

Each takes an `Engine` from `prefetch.store.db.make_engine`. Only the composition root
constructs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefetch.store.audit import AuditLog
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.runs import RunRepository

__all__ = ["AuditLog", "DispenseRepository", "MandateRepository", "RunRepository"]

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prefetch.ports import AuditStore, DispenseStore, MandateStore, RunStore

    # mypy proves that each adapter implements its port.
    def _conforms(engine: Engine) -> tuple[RunStore, DispenseStore, AuditStore, MandateStore]:
        return (
            RunRepository(engine),
            DispenseRepository(engine),
            AuditLog(engine),
            MandateRepository(engine),
        )
