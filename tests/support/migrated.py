"""A fresh migrated database for every test without migrating one per test.

Migrating costs about a tenth of a second on SQLite and over half a second on PostgreSQL
(mostly the server's own DDL work, then as much again to drop the schema), and most of the
suite's tests want a fresh migrated database. So the suite migrates for real once per dialect
and hands every test an equivalent database of its own:

- SQLite: a byte copy of a file migrated once per session;
- PostgreSQL: a migrated schema renamed to the test's own unique name. After the test its
  tables are emptied (TRUNCATE ... RESTART IDENTITY, sequences included) and it goes back to
  the pool, but only if its catalog (tables, columns, indexes, constraints, triggers,
  functions, alembic version) still matches a freshly migrated schema; a test that left
  anything else behind (a downgrade, a table of its own) gets its schema dropped.

Migrations themselves are still tested by the tests that call migrate.upgrade/downgrade.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine

_CATALOG = """
SELECT string_agg(entry, ';' ORDER BY entry) FROM (
    SELECT 'rel ' || c.relname || ' ' || c.relkind::text AS entry
    FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND a.attnum > 0
      AND NOT a.attisdropped
    UNION ALL
    SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid, true)
    FROM pg_constraint WHERE connamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'trg ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND NOT t.tgisinternal
    UNION ALL
    SELECT 'fn ' || proname || ' ' || md5(prosrc)
    FROM pg_proc WHERE pronamespace = CAST(:schema AS regnamespace)
) AS catalog
"""


def _catalog(conn, schema: str) -> str:  # type: ignore[no-untyped-def]
    """The schema's shape, with its own name taken out (constraint definitions name it)."""
    found = conn.execute(text(_CATALOG), {"schema": f'"{schema}"'}).scalar_one() or ""
    version = conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version')).all()
    return found.replace(f"{schema}.", "") + f";version {version}"


def _has_rows(conn, schema: str) -> bool:  # type: ignore[no-untyped-def]
    tables = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
    ).scalars()
    return any(
        conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{table}")')).scalar_one()
        for table in tables
        if table != "alembic_version"
    )


@dataclass
class MigratedTemplates:
    workdir: Path
    postgres_url: str
    _sqlite: Path | None = None
    _head: str | None = None
    _seeded: bool = False  # a migration wrote rows: emptying would lose them, never reuse
    _shape: str | None = None  # of a freshly migrated PostgreSQL schema
    _pool: list[str] = field(default_factory=list)  # migrated, empty, free schemas
    _handed_out: set[str] = field(default_factory=set)  # names already at head
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _admin: Engine | None = None

    # --- any database, and SQLite's template ------------------------------------------

    def migrate(self, engine: Engine) -> None:
        """Bring this test's database to head, as `migrate.upgrade(engine)` would."""
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            target = Path(database)
            if not target.exists() or target.stat().st_size == 0:
                shutil.copyfile(self._sqlite_template(), target)
                return
        if engine.dialect.name == "postgresql" and self._schema_of(engine) in self._handed_out:
            return
        if self._head is None:
            self._head = migrate.head_revision(engine.url.render_as_string())
        if migrate.current_revision(engine) == self._head:
            return  # already at head (a test's own migrated copy): upgrade would do nothing
        migrate.upgrade(engine)

    def _sqlite_template(self) -> Path:
        with self._lock:
            if self._sqlite is None:
                template = self.workdir / "migrated.db"
                template_engine = make_engine(f"sqlite:///{template}")
                migrate.upgrade(template_engine)
                template_engine.dispose()
                self._sqlite = template
            return self._sqlite

    # --- PostgreSQL ---------------------------------------------------------------------

    @property
    def admin(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self.postgres_url)
        return self._admin

    @staticmethod
    def _schema_of(engine: Engine) -> str:
        options = str(engine.url.query.get("options", ""))
        return options.removeprefix("-csearch_path=")

    def create_schema(self, name: str, *, migrated: bool) -> None:
        """Schema `name`, empty or (from the pool) migrated with empty tables."""
        with self._lock:
            pooled = self._take() if migrated else None
        with self.admin.begin() as conn:
            if pooled is None:
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            else:
                conn.execute(text(f'ALTER SCHEMA "{pooled}" RENAME TO "{name}"'))
        if pooled is not None:
            self._handed_out.add(name)

    def _take(self) -> str:
        if self._pool:
            return self._pool.pop()
        name = f"pool_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        engine = make_engine(f"{self.postgres_url}?options=-csearch_path%3D{name}")
        migrate.upgrade(engine)
        engine.dispose()
        if self._shape is None:  # the first one: what every returning schema must match
            with self.admin.connect() as conn:
                self._shape = _catalog(conn, name)
                self._seeded = _has_rows(conn, name)
        return name

    def release_schema(self, name: str) -> None:
        """After the test: back to the pool emptied, or dropped if its shape changed."""
        self._handed_out.discard(name)
        reusable = self._shape is not None and not self._seeded
        pooled = self._empty_if_unchanged(name) if reusable else None
        if pooled is not None:
            with self._lock:
                self._pool.append(pooled)
            return
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))

    def _empty_if_unchanged(self, name: str) -> str | None:
        """Its tables emptied and the schema renamed to a pool name; None if it changed."""
        pooled = f"pool_{uuid.uuid4().hex[:12]}"
        try:
            with self.admin.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                if _catalog(conn, name) != self._shape:
                    return None
                tables = conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = :schema "
                        "AND tablename <> 'alembic_version'"
                    ),
                    {"schema": name},
                ).scalars()
                listed = ", ".join(f'"{name}"."{table}"' for table in tables)
                conn.execute(text(f"TRUNCATE {listed} RESTART IDENTITY"))
                conn.execute(text(f'ALTER SCHEMA "{name}" RENAME TO "{pooled}"'))
        except Exception:  # no version table, a lock a leftover holds: drop it instead
            return None
        return pooled

    def close(self) -> None:
        if self._admin is None:
            return
        with self.admin.begin() as conn:
            for name in self._pool:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self._pool.clear()
        self._admin.dispose()
