"""The inventory on PostgreSQL: the same `Database` interface, for a force with several sites.

SQLite must not be shared over a network file system, so several sites that write one
inventory use PostgreSQL. `PgDatabase` speaks psycopg 3 but looks like `store.db.Database`
to the store modules: `?` placeholders (translated to psycopg's `%s`), rows as tuples from
`execute` and as dicts from `query`, failures as `MdmError`s that name the server and say
what to do. Writers are serialised as SQLite's `BEGIN IMMEDIATE` serialises them: every
write transaction first takes one transaction-scoped advisory lock, so the audit chain's
head is read and extended by one writer at a time and two sites can never fork it. The
connection runs in autocommit, so a read outside `transaction()` sees every commit.
psycopg is imported only here, and this module only when the inventory is a URL.

Round trips to the server are what a command pays for on PostgreSQL where SQLite makes a
function call, so this module spends as few as it can: a write whose result nobody reads
(`defer`) waits to go with the next statement, in one message to the server; the
schema check at every start is one query; rows are read in blocks; a table that a
transaction loaded in bulk is vacuumed after the commit, so the planner sees it as it
is (an index-only listing, not a sort of the whole table).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import psycopg
import psycopg.errors as pgerrors
from psycopg.conninfo import conninfo_to_dict

import mdm.store.dialect as dialect
from mdm.errors import ExitCode, MdmError
from mdm.store.db import Database, Params, Rows
from mdm.store.failures import NoInventory, StoreError
from mdm.timeutil import now

SCHEMES = ("postgresql://", "postgres://")
# The advisory lock every write transaction takes first (any constant; "mdm" in ASCII).
WRITE_LOCK = 0x6D646D
NOTICE_AFTER = 1.0  # seconds a write waits before saying that it is waiting
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def is_url(value: object) -> bool:
    """Say whether an inventory setting names a PostgreSQL database (else an SQLite file)."""
    return isinstance(value, str) and value.startswith(SCHEMES)


def describe(url: str) -> str:
    """Name a database the way messages show it: user@host:port/dbname, never a password."""
    info = conninfo_to_dict(url)
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    user = str(info.get("user") or os.environ.get("PGUSER") or "")
    name = info.get("dbname") or os.environ.get("PGDATABASE") or user
    service = f" (service {info['service']})" if info.get("service") else ""
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{name}{service}"


def check_url(url: str) -> dict[str, Any]:
    """Parse an inventory URL; refuse one that carries a password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise MdmError(f"the inventory URL is not valid: {exc}",
                       "write it as postgresql://ROLE@HOST:PORT/DATABASE") from None
    if info.get("password"):
        raise MdmError("the inventory URL carries a password; it would be seen in the"
                       " shell's history, the process list and the project file",
                       "remove it from the URL and give it with PGPASSFILE (~/.pgpass),"
                       " PGPASSWORD or a PostgreSQL service file")
    return info


@lru_cache(maxsize=512)
def translate_sql(sql: str, named: bool) -> str:
    """Turn SQLite-style placeholders (`?`, or `:name` with a dict) into psycopg's."""
    sql = sql.replace("%", "%%")
    if named:
        return _NAMED.sub(r"%(\1)s", sql)
    return sql.replace("?", "%s")


# Statements PREPARE takes (the rest go in a batch as they are).
_PREPARABLE = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES)\b", re.IGNORECASE)
# Statements after which psycopg deallocates every prepared statement of the connection.
_DISCARDS = re.compile(r"\s*(DROP|ALTER|ROLLBACK|DISCARD|DEALLOCATE)\b", re.IGNORECASE)


def _server_prepared(sql: str, named: bool, number: int) -> tuple[str, list[str], str]:
    """(name, the parameters' names in `$n` order, the statement with `$n` placeholders)
    for preparing a `?`- or `:name`-style statement on the server."""
    order: list[str] = []
    if named:
        def mark(match: re.Match[str]) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"
        text = _NAMED.sub(mark, sql)
    else:
        parts = sql.split("?")
        text = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    return f"mdm_deferred_{number}", order, text


def _prepare(sql: str, params: Params) -> tuple[str, Params | None]:
    if not params:
        return sql, None  # without parameters psycopg sends the text as it is
    return translate_sql(sql, isinstance(params, dict)), params


# A table that one transaction loaded with at least this many rows is vacuumed after the
# commit (an import; a push's few rows are autovacuum's to mind).
BULK_ROWS = 5000
_INSERT_INTO = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)


class BlockCursor(psycopg.Cursor[Any]):
    """psycopg's cursor, iterated a block of rows at a time.

    Row-by-row iteration runs psycopg's checks for every row (~8 µs: 0.35 s of a
    45,000-officer list); `fetchmany` converts a block in one call. `fetchone` and
    `next()` behave as psycopg's own.
    """

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        while rows := self.fetchmany(1000):
            yield from rows


def _array(values: Sequence[Any]) -> str:
    """The text form of a PostgreSQL array of these values (for a parameter the statement
    casts to its array type): written here, as psycopg's own array quoting costs ~0.1 ms
    of Python per array of 25."""
    return "{" + ",".join("NULL" if v is None else _element(str(v)) for v in values) + "}"


def _element(text: str) -> str:
    """One array element, quoted."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class _Pending:
    """Rows of one kind deferred (PgDatabase.defer_rows), waiting for their statement."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows
        self.values: list[tuple[Any, ...]] = []
        self.keys: set[Any] = set()  # the key column's values (none without a key)

    def add(self, row: tuple[Any, ...], key: Any) -> None:
        self.values.append(row)
        if key is not None:
            self.keys.add(key)


class PgDatabase(Database):
    """One connection to a PostgreSQL inventory, with `store.db.Database`'s interface.

    A subclass so that every store function typed for `Database` takes it; it shares no
    code with SQLite's (its cursors are psycopg's, which read the same way).
    """

    dialect = dialect.POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any], url: str, wait: float,
                 on_wait: Callable[[int | None], None] | None = None) -> None:
        self.pg = conn
        self.conn = conn  # type: ignore[assignment]  # (for close() and identity only)
        self.url = url
        self.path = describe(url)  # type: ignore[assignment]  # what messages call it
        self.wait = wait
        self.on_wait = on_wait
        self._in_transaction = False
        # writes waiting for the next statement: parameters bound, or rows of one kind
        self._deferred: list[str | _Pending] = []
        self._binder: psycopg.ClientCursor[Any] | None = None
        # Deferred statements prepared on the server: (sql, named) -> (name, argument order)
        self._prepared: dict[tuple[str, bool], tuple[str, list[str]]] = {}
        self._prepare_count = 0  # names are never reused
        self._loaded: dict[str, int] = {}  # rows this transaction loaded in bulk, by table

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    @property
    def utils(self) -> Any:
        raise RuntimeError("sqlite-utils serves SQLite inventories only")

    def failed(self, exc: psycopg.Error) -> Exception:  # type: ignore[override]
        """Return the error to raise for a psycopg failure (itself if it is not the server's)."""
        return translate(exc, self.path, self.wait) or exc

    def defer(self, sql: str, params: Params = (), evidential: bool = True) -> None:
        """Run a write whose result nobody reads, with the next statement.

        Inside a transaction the statement waits, and goes to the server in one message
        with the next statement this connection runs (or the COMMIT), so one round trip
        and one call into psycopg serve them all. Each deferred statement is prepared on
        the server once per connection (`PREPARE`, so it is planned once, as psycopg's own
        prepared statements are) and sent as `EXECUTE name(values)`, the values written in
        as literals by psycopg's client-side binding: so its parameters must take their
        types from the statement (a column they are stored in or compared with), as an
        INSERT's, UPDATE's or DELETE's do. Its failure is raised, translated like any
        other, by that next call, and the transaction rolls back as for any failed
        statement. Outside a transaction it runs now.

        `evidential` False says the statement changes no evidential row (evidence.EVIDENCE:
        no update of those tables' proved columns, no new operator, device or assignment),
        so an audit row after it need not read what was changed; `transaction()` still
        reads that before it commits, and refuses to commit if the statement did.
        """
        if evidential:
            self.statements += 1
        if not self._in_transaction:
            self.execute(sql, params)
            return
        self._deferred.append(self._bound(sql, params, prepared=True))

    def defer_rows(self, rows: Rows, values: Sequence[Any], evidential: bool = True) -> None:
        """Defer one row of a kind of write (`Rows`): the rows of one kind deferred one
        after another, with only rows of other kinds between them, go in one statement
        (each column's values as an array), prepared once per connection like `defer`'s.

        So a push's 25 devices cost the server three statements, not 50: a statement's
        fixed cost (its plan's executor, the relations, their indexes and triggers set
        up afresh at each execution) was most of its work. Kinds so deferred may run in
        any order between two other statements, so each must read and write nothing
        another writes (triggers included); a plain statement deferred or run after a
        row keeps its place after it. `evidential` as for `defer`.
        """
        if evidential:
            self.statements += 1
        row = tuple(values)
        if not self._in_transaction:
            self.execute(rows.sql, [[v] for v in row])
            return
        key = None if rows.key is None else row[rows.key]
        for waiting in reversed(self._deferred):
            if not isinstance(waiting, _Pending):
                break
            if waiting.rows is rows:
                if key not in waiting.keys:
                    waiting.add(row, key)
                    return
                break
        pending = _Pending(rows)
        pending.add(row, key)
        self._deferred.append(pending)

    def _text(self, waiting: str | _Pending) -> str:
        """The text that runs one deferred write."""
        if isinstance(waiting, str):
            return waiting
        columns = [_array(c) for c in zip(*waiting.values, strict=True)]
        return self._bound(waiting.rows.sql, columns, prepared=True)

    def _bound(self, sql: str, params: Params, prepared: bool) -> str:
        """The text that runs one statement with these parameters in a batch: `EXECUTE` of
        a statement prepared on the server (`prepared`, or a statement without parameters,
        which has no types to infer), else the statement with its values written in."""
        named = isinstance(params, dict)
        if self._binder is None:
            self._binder = psycopg.ClientCursor(self.pg)
        if not _PREPARABLE.match(sql) or (params and not prepared):
            if not params:
                return sql  # (COMMIT: nothing to plan)
            return self._binder.mogrify(translate_sql(sql, named), params)
        prepare = ""
        if (sql, named) not in self._prepared:
            self._prepare_count += 1
            name, order, text = _server_prepared(sql, named, self._prepare_count)
            self._prepared[(sql, named)] = (name, order)
            prepare = f"PREPARE {name} AS {text};\n"
        name, order = self._prepared[(sql, named)]
        values = [params[k] for k in order] if isinstance(params, dict) else list(params)
        if not values:
            return f"{prepare}EXECUTE {name}"
        marks = ", ".join(["%s"] * len(values))
        return prepare + self._binder.mogrify(f"EXECUTE {name}({marks})", values)

    def _forget_prepared(self) -> None:
        """Forget the server-side statements: psycopg deallocates every prepared statement
        after a ROLLBACK, DROP or ALTER, and a PREPARE in a failed batch may not have run.
        The names are never reused, so one left on the server is only unused."""
        self._prepared.clear()

    def _run(self, sql: str, params: Params = ()) -> Any:
        """Run one statement, after the deferred writes and in the same round trip."""
        self.statements += 1
        if _DISCARDS.match(sql):
            self._forget_prepared()
        if not self._deferred:
            return self.pg.execute(*_prepare(sql, params))
        waiting, self._deferred = self._deferred, []
        try:
            cursor = self.pg.execute(";\n".join([*map(self._text, waiting),
                                                  self._bound(sql, params, False)]))
        except BaseException:
            self._forget_prepared()
            raise
        while cursor.nextset():  # the results of the deferred writes come first
            pass
        return cursor

    def flush(self) -> None:
        """Send the deferred writes now (one round trip), raising the first one's failure."""
        if not self._deferred:
            return
        waiting, self._deferred = self._deferred, []
        try:
            self.pg.execute(";\n".join(map(self._text, waiting)))
        except psycopg.Error as exc:
            self._forget_prepared()
            raise self.failed(exc) from None

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement."""
        try:
            return self._run(sql, params)
        except psycopg.Error as exc:
            raise self.failed(exc) from None

    def executemany(self, sql: str, rows: Iterable[Params]) -> Any:
        """Run one statement for many rows (inside the caller's transaction)."""
        rows = list(rows)
        self.flush()
        self.statements += 1
        cursor = self.pg.cursor()
        if not rows:
            return cursor
        try:
            cursor.executemany(translate_sql(sql, isinstance(rows[0], dict)), rows)
        except psycopg.Error as exc:
            raise self.failed(exc) from None
        into = _INSERT_INTO.match(sql)
        if into:
            self._note_loaded(into.group(1), len(rows))
        return cursor

    def _note_loaded(self, table: str, count: int) -> None:
        if self._in_transaction:
            self._loaded[table] = self._loaded.get(table, 0) + count

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Return every row of a query as a dict."""
        cursor = self.execute(sql, params)
        cols = [c.name for c in cursor.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cursor]

    def iter_query(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """Run a query now and yield its rows as dicts, one at a time."""
        cursor = self.execute(sql, params)
        cols = [c.name for c in cursor.description or ()]
        return (dict(zip(cols, row, strict=True)) for row in cursor)

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """Return the first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append many rows to one table with COPY (inside the caller's transaction)."""
        count, rows = 0, list(rows)  # read first: the rows may come from this connection
        self.flush()
        self.statements += 1
        try:
            with self.pg.cursor() as cursor, cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as exc:
            raise self.failed(exc) from None
        self._note_loaded(table, count)
        return count

    def begin(self, then: str | None = None) -> Any:
        """Open a write transaction holding the write lock; say so if it has to wait.

        `then`, a query, runs as soon as the lock is held, in the same round trip; its
        first row is returned (None without one).
        """
        first = min(NOTICE_AFTER, self.wait)
        taken, row = self._lock(first, then)
        if taken:
            return row
        if first >= self.wait:
            raise self.busy()
        if self.on_wait:
            self.on_wait(self.lock_holder())
        taken, row = self._lock(self.wait - first, then)
        if not taken:
            raise self.busy()
        return row

    def _lock(self, seconds: float, then: str | None) -> tuple[bool, Any]:
        """BEGIN and take the write lock within `seconds`, then run `then`; (False, None),
        rolled back, if the lock did not come."""
        # One round trip: BEGIN, the lock's timeout, the lock, then the timeout for row
        # locks (not expected to wait, as writers are serialised, but bounded all the same).
        first, rest = max(1, int(seconds * 1000)), max(1, int(self.wait * 1000))
        self._in_transaction = True
        self.statements += 1
        try:
            cursor = self.pg.execute(f"BEGIN; SET LOCAL lock_timeout = '{first}ms';"
                                     f" SELECT pg_advisory_xact_lock({WRITE_LOCK});"
                                     f" SET LOCAL lock_timeout = '{rest}ms'"
                                     + (f"; {then}" if then else ""))
            if not then:
                return True, None
            while cursor.nextset():
                pass
            return True, cursor.fetchone()
        except pgerrors.LockNotAvailable:
            self.rollback()
            return False, None
        except psycopg.Error as exc:
            self.rollback()
            raise self.failed(exc) from None

    def lock_holder(self) -> int | None:
        """Return the pid of the mdm process holding the write lock, when it says."""
        name = self.scalar(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
            " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.objid = ? AND a.pid <> pg_backend_pid() AND l.database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            [WRITE_LOCK])
        match = re.fullmatch(r"mdm (\d+)", name or "")
        return int(match.group(1)) if match else None

    def busy(self) -> StoreError:
        """Return the error for a write that waited its whole limit for the write lock."""
        try:
            pid = self.lock_holder()
        except MdmError:
            pid = None
        who = f"another mdm write (pid {pid})" if pid else "another mdm write"
        return StoreError(f"the inventory {self.path} is busy: {who} held it for more than"
                          f" {self.wait:g} s; nothing was changed",
                          "run the command again when it has finished, or wait longer with"
                          " --wait SECONDS")

    def commit(self) -> None:
        """Commit (with any deferred writes, in one round trip), then vacuum the tables
        the transaction loaded in bulk."""
        loaded, self._loaded = self._loaded, {}
        bulk = sorted(t for t, n in loaded.items() if n >= BULK_ROWS)
        if bulk:
            # Durable before it returns, whatever the server's default: VACUUM can only
            # mark the new rows visible to all once their commit is on disk.
            self._deferred.append("SET LOCAL synchronous_commit = on")
        try:
            self._run("COMMIT")
        except psycopg.Error as exc:
            self.rollback()
            raise self.failed(exc) from None
        finally:
            self._in_transaction = False
        for table in bulk:
            self.tidy(table)

    def tidy(self, table: str) -> None:
        """VACUUM one table after a bulk load: its size, and the visibility map an
        index-only scan needs, for the planner (without them it reads the 45,000-officer
        list by sorting the whole table, ~0.3 s of the server's, not from its index).

        Autovacuum would get there within minutes; a command run just after an import
        should not pay for the wait. The column statistics (ANALYZE, ~1 s for the roster)
        are left to autovacuum. A failure here changes nothing and is not raised.
        """
        try:
            self.pg.execute(f"VACUUM {table}")
        except psycopg.Error:
            pass  # (say, a role that does not own the table): autovacuum will do it

    def rollback(self) -> None:
        self._in_transaction = False
        self._deferred, self._loaded = [], {}
        self._forget_prepared()
        try:
            self.pg.execute("ROLLBACK")
        except psycopg.Error:
            pass  # a lost connection has rolled back by itself

    def close(self) -> None:
        self.pg.close()


def translate(exc: psycopg.Error, where: object, wait: float) -> MdmError | None:
    """Return the operator-facing error for a failure of the server or its disk, else None."""
    if isinstance(exc, pgerrors.DiskFull):
        return StoreError(f"the disk of the PostgreSQL server holding {where} is full;"
                          " nothing was changed",
                          "ask its administrator to free space, then run the command again")
    if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.DeadlockDetected):
        return StoreError(f"the inventory {where} is busy: another write held a row for"
                          f" more than {wait:g} s; nothing was changed",
                          "run the command again, or wait longer with --wait SECONDS")
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return StoreError(f"the role has no right to do this in {where} ({exc})",
                          "grant the role ownership of the database's tables"
                          " (see README: Several sites)")
    if isinstance(exc, pgerrors.UndefinedTable | pgerrors.UndefinedColumn):
        return StoreError(f"the inventory {where} is missing part of its schema ({exc}):"
                          " it was altered outside mdm",
                          "run `mdm audit verify`, and restore the database from a backup")
    if isinstance(exc, pgerrors.DataCorrupted | pgerrors.IndexCorrupted):
        return StoreError(f"the PostgreSQL server reports {where} damaged ({exc})",
                          "stop writing to it and restore it from a backup")
    if isinstance(exc, psycopg.OperationalError) and "number of parameters" in str(exc):
        # libpq refuses a statement of over 65,535 values before sending it: a fault in
        # mdm's SQL, not the server's or the network's.
        return MdmError(f"a statement for {where} carried more values than PostgreSQL takes"
                        f" in one ({' '.join(str(exc).split())}); nothing was changed",
                        "run with -v and report it: it is a fault in mdm", ExitCode.INTERNAL)
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, pgerrors.QueryCanceled):
        return StoreError(f"lost the connection to the PostgreSQL server of {where} ({exc});"
                          " nothing was changed by the unfinished command",
                          "check that the server is up and reachable, then run the command"
                          " again")
    return None


def _connect_error(exc: psycopg.OperationalError, where: str) -> MdmError:
    text = " ".join(str(exc).split())  # libpq's lines and tabs as one line
    low = text.lower()
    if "password" in low or "authentication" in low:
        return StoreError(f"the PostgreSQL server refused the login to {where} ({text})",
                          "give the password with PGPASSFILE (~/.pgpass), PGPASSWORD or a"
                          " service file, and check the role named in the URL")
    if "does not exist" in low and "database" in low:
        return StoreError(f"the database of {where} does not exist",
                          "create it first: createdb --locale=C --template=template0 -O"
                          " ROLE DATABASE (see README: Several sites)")
    return StoreError(f"cannot reach the PostgreSQL inventory {where} ({text})",
                      "check that the server is running, that the host and port in --db /"
                      " MDM_DB / the project file's inventory are right, and that a firewall"
                      " lets this machine in")


def connect(url: str, *, known: int, create: bool = True, wait: float = 30.0,
            on_wait: Callable[[int | None], None] | None = None) -> PgDatabase:
    """Open a PostgreSQL inventory and bring its schema up to date.

    With `create` False a database holding no inventory is refused (NoInventory).
    `known`: how many migrations this mdm has (mdm.store.SCHEMA_VERSION).
    """
    info = check_url(url)
    where = describe(url)
    params: dict[str, Any] = {"autocommit": True, "application_name": f"mdm {os.getpid()}"}
    if "connect_timeout" not in info:
        params["connect_timeout"] = CONNECT_TIMEOUT
    try:
        conn = psycopg.connect(url, cursor_factory=BlockCursor, **params)
    except psycopg.OperationalError as exc:
        raise _connect_error(exc, where) from None
    db = PgDatabase(conn, url, wait, on_wait)
    try:
        migrate(db, create, known)
    except BaseException:
        conn.close()
        raise
    return db


def _tables(db: PgDatabase) -> set[str]:
    return {name for (name,) in db.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema()")}


def _applied(db: PgDatabase) -> list[str] | None:
    """The migrations recorded in the inventory, or None when it records none (one query,
    not the catalogue's: the usual start of a command against an inventory in use)."""
    try:
        return [n for (n,) in db.pg.execute("SELECT name FROM mdm_migrations")]
    except pgerrors.UndefinedTable:
        return None  # (autocommit: the failed query left no transaction behind)
    except psycopg.Error as exc:
        raise db.failed(exc) from None


def _current(applied: list[str], known: int) -> bool:
    """Say whether the inventory records this mdm's migrations, m001 to the last it knows
    (`known`, their number): the usual start of a command, told (as SQLite's `user_version`
    tells it) without importing the migrations' text, which only a change of schema needs."""
    return sorted(name[:4] for name in applied) == [f"m{number:03d}" for number
                                                    in range(1, known + 1)]


def migrate(db: PgDatabase, create: bool, known: int) -> None:
    """Bring the schema up to date under the write lock; refuse a newer or foreign one.
    `known`: how many migrations this mdm has (mdm.store.SCHEMA_VERSION)."""
    applied = _applied(db)
    if applied is not None and _current(applied, known):
        return
    import mdm.store.pg_migrations as pg_migrations

    for attempt in (1, 2):
        if attempt == 2:
            applied = _applied(db)
        if applied is None:
            if _tables(db):
                raise MdmError(f"{db.path} holds tables but not an mdm inventory",
                               "point --db / MDM_DB at the inventory you meant, or at an"
                               " empty database")
            if not create:
                raise NoInventory(db.path, " (the database is empty)")
            applied = []
        unknown = sorted(set(applied) - set(pg_migrations.NAMES))
        if unknown:
            raise MdmError(f"this inventory has schema version {len(applied)} (up to"
                           f" {unknown[-1]}); this mdm knows {len(pg_migrations.NAMES)}",
                           "upgrade mdm before using this inventory")
        if len(applied) == len(pg_migrations.NAMES):
            return
        if attempt == 2:
            break
        db.begin()  # the write lock: two first runs can't both migrate
        try:
            apply_migrations(db)
            db.commit()
        except BaseException:
            db.rollback()
            raise


def apply_migrations(db: PgDatabase) -> None:
    """Apply the migrations not yet recorded, inside the caller's write transaction."""
    import mdm.store.pg_migrations as pg_migrations

    if "mdm_migrations" not in _tables(db):
        db.execute("CREATE TABLE mdm_migrations (name TEXT PRIMARY KEY,"
                   " applied_at TEXT NOT NULL)")
    done = {n for (n,) in db.execute("SELECT name FROM mdm_migrations")}
    for name, statements in pg_migrations.MIGRATIONS:
        if name in done:
            continue
        for sql in statements:
            db.execute(sql)
        db.execute("INSERT INTO mdm_migrations (name, applied_at) VALUES (?, ?)",
                   [name, now()])


def drop_inventory(db: PgDatabase) -> None:
    """Drop every table and function of the inventory, inside the caller's transaction."""
    tables = sorted(_tables(db))
    if tables:
        db.execute(f"DROP TABLE {', '.join(tables)} CASCADE")
    functions = [n for (n,) in db.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema() AND (p.proname LIKE 'mdm!_%' ESCAPE '!'"
        " OR p.proname LIKE '%!_next!_id' ESCAPE '!')")]
    if functions:
        db.execute(f"DROP FUNCTION {', '.join(functions)} CASCADE")
