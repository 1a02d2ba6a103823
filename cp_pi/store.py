"""What the charge point must not forget across a crash or a power cut, in one SQLite file.

OCPP 1.6 (section 3.7) requires transaction-related messages to reach the central system even
when the link or the power fails, in the order they were made; a transaction that was running
when the power went must be ended on the next start. Both need storage where a write that
returned is on disk and a write that was interrupted is not there at all.

The standard library's sqlite3 gives exactly that: a single file, atomic transactions, a
write-ahead log that survives power loss with ``synchronous=FULL``, and nothing to install on
a Raspberry Pi. The charge point is one asyncio process and every call here is short, so the
calls are synchronous on one connection; no thread or async driver is needed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

FILE_NAME = "cp-pi.sqlite3"

#: Free space below which a failed write is put down to a full disk. SQLite itself reports a
#: full disk in several ways (an I/O error on its shared-memory file, a failed rollback).
LOW_SPACE = 256 * 1024

#: Seconds between two looks at whether the store file is still where it was opened.
FILE_CHECK_PERIOD = 10.0

log = logging.getLogger("cp_pi.store")

#: MIGRATIONS[n] brings a file from schema version n to n + 1 (``PRAGMA user_version``).
#: Append only: a released migration never changes, or files in the field would diverge.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE setting (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID""",
        # AUTOINCREMENT: a seq is never reused, so seq order is creation order for good.
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            transaction_ref TEXT,
            attempts INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX outbox_transaction_ref ON outbox (transaction_ref)",
        """CREATE TABLE open_transaction (
            ref TEXT PRIMARY KEY,
            connector_id INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            meter_start INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            transaction_id INTEGER,
            last_meter_wh INTEGER
        )""",
    ),
    # The Local Authorization List (idTag as sent, upper-cased key) and the reservations.
    (
        """CREATE TABLE local_auth_entry (
            id_tag TEXT PRIMARY KEY,
            info TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE reservation (
            reservation_id INTEGER PRIMARY KEY,
            connector_id INTEGER NOT NULL,
            held_connector INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            parent_id_tag TEXT,
            expiry_date TEXT NOT NULL
        )""",
    ),
    # Smart Charging: the installed charging profiles, as their OCPP payloads.
    (
        """CREATE TABLE charging_profile (
            id INTEGER PRIMARY KEY,
            connector_id INTEGER NOT NULL,
            payload TEXT NOT NULL
        )""",
    ),
)


class StoreError(Exception):
    """The store cannot be used: corrupted, from a newer cp-pi, or the disk refused a write."""


@dataclass(frozen=True)
class QueuedMessage:
    seq: int
    action: str
    payload: dict[str, Any]
    transaction_ref: str | None
    attempts: int


@dataclass
class TransactionRecord:
    """A transaction as it must be known after a restart to end it properly.

    ``ref`` is ours, known at once; ``transaction_id`` is the central system's, known only once
    StartTransaction was answered (possibly long after the transaction ended, when offline).
    """

    ref: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    transaction_id: int | None = None
    last_meter_wh: int | None = None

    @property
    def name(self) -> str:
        return transaction_name(self.transaction_id, self.ref)


def transaction_name(transaction_id: int | None, ref: str | None) -> str:
    """How log lines name a transaction: the central system's id, or our ref until it gave one.

    Queued payloads say -1 until StartTransaction is answered. A line written before the id was
    known and one written after are tied together by the line that tells the id (see
    ``Transactions.on_answer``).
    """
    if transaction_id is not None and transaction_id >= 0:
        return f"transaction {transaction_id}"
    return f"transaction ref {ref[:8]}" if ref else "a transaction without ref"


_Result = TypeVar("_Result")


def _write(method: Callable[..., _Result]) -> Callable[..., _Result]:
    """A write that failed on disk is made again in memory, once the store has switched there.

    Inside a caller's :meth:`Store.atomic` block it is not repeated: the block as a whole was
    rolled back, and only its caller can make it again (see
    :func:`cp_pi.station.transactions.durably`).
    """

    @functools.wraps(method)
    def write(self: Store, *args: Any, **kwargs: Any) -> _Result:
        if self._depth:
            return method(self, *args, **kwargs)
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            if self.degraded is None:
                raise
            return method(self, *args, **kwargs)

    return write


class Store:
    path: Path

    def __init__(
        self, connection: sqlite3.Connection, path: Path, identity: tuple[int, int] | None = None
    ) -> None:
        """Use :meth:`open`; this only adopts a connection that is already set up."""
        self._db = connection
        self.path = path
        #: (st_dev, st_ino) of the file in use; None in memory.
        self._identity = identity
        self._depth = 0
        #: Why the store runs from memory (nothing survives a restart), or None when on disk.
        self.degraded: str | None = None

    @classmethod
    def open_or_memory(cls, data_dir: Path) -> Store:
        """The store in ``data_dir``, or, when that cannot be used, one in memory.

        A charge point must go on charging with a broken SD card: it logs why at error level,
        reports it (``degraded``), and never crash-loops. A damaged file is left as it is.
        """
        try:
            return cls.open(data_dir)
        except (StoreError, OSError) as error:
            store = cls._memory(data_dir / FILE_NAME)
            store._report(str(error))
            return store

    @classmethod
    def _memory(cls, path: Path) -> Store:
        connection = sqlite3.connect(":memory:", isolation_level=None)
        _set_up(connection, path, durable=False)
        return cls(connection, path)

    def _report(self, reason: str) -> None:
        self.degraded = reason
        log.error(
            "message store unusable (%s): running from memory; queued transaction messages "
            "will not survive a restart",
            reason,
        )

    def _switch_to_memory(self, reason: str) -> None:
        """Carry on in memory with everything the file held so far."""
        memory = sqlite3.connect(":memory:", isolation_level=None)
        try:
            self._db.backup(memory)
        except sqlite3.Error:
            memory.close()
            memory = sqlite3.connect(":memory:", isolation_level=None)
            _set_up(memory, self.path, durable=False)
        self._db.close()
        self._db = memory
        self._identity = None
        self._report(reason)

    def check_file(self) -> None:
        """Move to memory, with everything queued, when the file in use is gone from its path.

        A data directory deleted (or a file replaced) under a running store leaves SQLite
        writing to a file nobody will open again: the queued messages would be lost at the next
        start. The open connection still reads the old file, so its content is copied to memory
        and kept for as long as the process lives; the directory is not made again behind the
        back of whoever removed it. One ``stat``: cheap enough before every write.
        """
        if self._identity is None:
            return
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            reason = f"{self.path} was deleted while in use"
        except OSError as error:
            reason = f"cannot look at {self.path}: {error}"
        else:
            if (found.st_dev, found.st_ino) == self._identity:
                return
            reason = f"{self.path} was replaced by another file while in use"
        self._switch_to_memory(reason)

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """Open (or create) the store in ``data_dir`` and bring its schema up to date.

        Raises :class:`StoreError` when the file is not a healthy cp-pi store; what to do then
        (move it aside, refuse to start) is the caller's decision, never silently ours.
        """
        path = data_dir / FILE_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            # Owner only: the store holds the AuthorizationKey. SQLite gives its -wal and -shm
            # files the main file's permissions.
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
        except OSError as error:
            raise StoreError(f"cannot write {path}: {_trouble(data_dir) or error}") from error
        try:
            # isolation_level=None: no implicit transactions; atomic() issues BEGIN/COMMIT.
            connection = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open {path}: {error}") from error
        try:
            _set_up(connection, path)
            found = os.stat(path)
        except StoreError:
            connection.close()
            raise
        except (sqlite3.Error, OSError) as error:
            connection.close()
            # A damaged file is a DatabaseError; a refused write an OperationalError.
            refused = isinstance(error, (sqlite3.OperationalError, OSError))
            trouble = _trouble(data_dir) if refused else None
            if trouble is not None:
                raise StoreError(f"cannot write {path}: {trouble} ({error})") from error
            raise StoreError(f"{path} is not a usable cp-pi store: {error}") from error
        return cls(connection, path, (found.st_dev, found.st_ino))

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group every write in the block into one SQLite transaction: all of it or none of it.

        Blocks nest; only the outermost one commits. Every write method runs inside one, so a
        single call is atomic on its own and joins the caller's block when there is one.
        """
        outermost = self._depth == 0
        if outermost:
            self.check_file()
        try:
            if outermost:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            if outermost:
                self._db.execute("COMMIT")
        except BaseException as error:
            if outermost and self._db.in_transaction:
                # A failing disk may refuse the rollback too; memory takes over below.
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                if outermost and self.degraded is None:
                    trouble = _trouble(self.path.parent)
                    why = f"{trouble} ({error})" if trouble else str(error)
                    self._switch_to_memory(f"write to {self.path} failed: {why}")
                raise StoreError(f"write to {self.path} failed: {error}") from error
            raise

    # -- settings ---------------------------------------------------------------------------

    def settings(self, namespace: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM setting WHERE namespace = ? ORDER BY key", (namespace,)
        )
        return dict(rows.fetchall())

    @_write
    def put_setting(self, namespace: str, key: str, value: str) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT INTO setting (namespace, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )

    @_write
    def clear_settings(self, namespace: str) -> None:
        with self.atomic():
            self._db.execute("DELETE FROM setting WHERE namespace = ?", (namespace,))

    # -- outbox of transaction-related messages ---------------------------------------------

    @_write
    def enqueue(
        self, action: str, payload: dict[str, Any], *, transaction_ref: str | None = None
    ) -> int:
        with self.atomic():
            cursor = self._db.execute(
                "INSERT INTO outbox (action, payload, transaction_ref) VALUES (?, ?, ?)",
                (action, json.dumps(payload), transaction_ref),
            )
        assert cursor.lastrowid is not None  # always set after an INSERT into a rowid table
        return cursor.lastrowid

    def outbox(self) -> list[QueuedMessage]:
        rows = self._db.execute(
            "SELECT seq, action, payload, transaction_ref, attempts FROM outbox ORDER BY seq"
        )
        return [_message(row) for row in rows]

    def next_message(self) -> QueuedMessage | None:
        row = self._db.execute(
            "SELECT seq, action, payload, transaction_ref, attempts FROM outbox"
            " ORDER BY seq LIMIT 1"
        ).fetchone()
        return None if row is None else _message(row)

    @_write
    def record_attempt(self, seq: int) -> int:
        """Count one more delivery attempt; raises KeyError for a message no longer queued."""
        with self.atomic():
            row = self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts",
                (seq,),
            ).fetchone()
        if row is None:
            raise KeyError(seq)
        attempts: int = row[0]
        return attempts

    @_write
    def remove(self, seq: int) -> None:
        """Forget an answered message; removing one that is already gone is harmless."""
        with self.atomic():
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    @_write
    def resolve_transaction_id(self, transaction_ref: str, transaction_id: int) -> None:
        """Put the central system's id into every queued message of that transaction.

        Only payloads that already carry a ``transactionId`` (a placeholder) are patched, so the
        StartTransaction itself, if still queued, stays valid. The transaction may have ended
        already (offline start and stop); its messages are patched all the same.
        """
        with self.atomic():
            self._db.execute(
                "UPDATE open_transaction SET transaction_id = ? WHERE ref = ?",
                (transaction_id, transaction_ref),
            )
            rows = self._db.execute(
                "SELECT seq, payload FROM outbox WHERE transaction_ref = ?", (transaction_ref,)
            ).fetchall()
            for seq, text in rows:
                payload = json.loads(text)
                if "transactionId" in payload:
                    payload["transactionId"] = transaction_id
                    self._db.execute(
                        "UPDATE outbox SET payload = ? WHERE seq = ?", (json.dumps(payload), seq)
                    )

    # -- transactions, for recovery ---------------------------------------------------------

    @_write
    def begin_transaction(self, tx: TransactionRecord) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT INTO open_transaction (ref, connector_id, id_tag, meter_start,"
                " started_at, transaction_id, last_meter_wh) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tx.ref,
                    tx.connector_id,
                    tx.id_tag,
                    tx.meter_start,
                    tx.started_at,
                    tx.transaction_id,
                    tx.last_meter_wh,
                ),
            )

    @_write
    def update_transaction_meter(self, ref: str, meter_wh: int) -> None:
        """Remember the latest reading: after a power cut it becomes the meterStop."""
        with self.atomic():
            cursor = self._db.execute(
                "UPDATE open_transaction SET last_meter_wh = ? WHERE ref = ?", (meter_wh, ref)
            )
            if cursor.rowcount == 0:
                raise KeyError(ref)

    @_write
    def end_transaction(self, ref: str) -> None:
        """Forget an ended transaction; its queued messages stay until delivered."""
        with self.atomic():
            cursor = self._db.execute("DELETE FROM open_transaction WHERE ref = ?", (ref,))
            if cursor.rowcount == 0:
                raise KeyError(ref)

    # -- the Local Authorization List and reservations ----------------------------------------
    # Not retried in memory (no ``_write``): an update the disk refused is answered Failed and
    # the list stays as it was, all of it, rather than taken in a memory lost at the restart.

    def local_list_entry(self, id_tag: str) -> str | None:
        """The stored idTagInfo (JSON) of ``id_tag``, by its upper-cased key."""
        row = self._db.execute(
            "SELECT info FROM local_auth_entry WHERE id_tag = ?", (id_tag,)
        ).fetchone()
        return None if row is None else str(row[0])

    def local_list_size(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM local_auth_entry").fetchone()[0]
        return count

    def update_local_list(
        self, *, full: bool, upserts: list[tuple[str, str]], removals: list[str]
    ) -> None:
        """One SendLocalList, in the caller's :meth:`atomic` block with its version."""
        if full:
            self._db.execute("DELETE FROM local_auth_entry")
        self._db.executemany(
            "DELETE FROM local_auth_entry WHERE id_tag = ?", [(r,) for r in removals]
        )
        self._db.executemany(
            "INSERT INTO local_auth_entry (id_tag, info) VALUES (?, ?)"
            " ON CONFLICT (id_tag) DO UPDATE SET info = excluded.info",
            upserts,
        )

    def reservations(self) -> list[tuple[int, int, int, str, str | None, str]]:
        """(reservation_id, connector_id, held_connector, id_tag, parent_id_tag, expiry_date)."""
        return list(
            self._db.execute(
                "SELECT reservation_id, connector_id, held_connector, id_tag, parent_id_tag,"
                " expiry_date FROM reservation ORDER BY reservation_id"
            )
        )

    @_write
    def put_reservation(
        self,
        reservation_id: int,
        connector_id: int,
        held_connector: int,
        id_tag: str,
        parent_id_tag: str | None,
        expiry_date: str,
    ) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT OR REPLACE INTO reservation (reservation_id, connector_id,"
                " held_connector, id_tag, parent_id_tag, expiry_date) VALUES (?, ?, ?, ?, ?, ?)",
                (reservation_id, connector_id, held_connector, id_tag, parent_id_tag, expiry_date),
            )

    @_write
    def remove_reservation(self, reservation_id: int) -> None:
        with self.atomic():
            self._db.execute("DELETE FROM reservation WHERE reservation_id = ?", (reservation_id,))

    def open_transactions(self) -> list[TransactionRecord]:
        rows = self._db.execute(
            "SELECT ref, connector_id, id_tag, meter_start, started_at, transaction_id,"
            " last_meter_wh FROM open_transaction ORDER BY rowid"
        )
        return [TransactionRecord(*row) for row in rows]

    # -- charging profiles (Smart Charging) --------------------------------------------------

    def charging_profiles(self) -> list[tuple[int, dict[str, Any]]]:
        """(connector id, payload) of every installed charging profile, in id order."""
        rows = self._db.execute(
            "SELECT connector_id, payload FROM charging_profile ORDER BY id"
        ).fetchall()
        return [(connector_id, json.loads(payload)) for connector_id, payload in rows]

    @_write
    def replace_charging_profiles(
        self, removed: list[int], added: list[tuple[int, int, dict[str, Any]]]
    ) -> None:
        """Remove the profiles ``removed`` (ids) and install ``added`` (id, connector, payload),
        in one store transaction: a power cut leaves the old set or the new one."""
        with self.atomic():
            self._db.executemany(
                "DELETE FROM charging_profile WHERE id = ?", [(id,) for id in removed]
            )
            self._db.executemany(
                "INSERT INTO charging_profile (id, connector_id, payload) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET connector_id = excluded.connector_id,"
                " payload = excluded.payload",
                [(id, connector, json.dumps(payload)) for id, connector, payload in added],
            )


def _set_up(db: sqlite3.Connection, path: Path, *, durable: bool = True) -> None:
    """Make the connection crash-safe, check the file, and migrate it to the current schema."""
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if durable and mode != "wal":
        raise StoreError(f"{path}: cannot switch to write-ahead logging (got {mode!r})")
    # FULL: a commit is on the disk before it returns; NORMAL could lose the last ones on
    # power loss, which is the very case the outbox exists for.
    db.execute("PRAGMA synchronous = FULL")
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise StoreError(f"{path} is damaged: {check}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path} has schema version {version}, newer than this cp-pi knows"
            f" ({len(MIGRATIONS)}): it was written by a newer release"
        )
    for target, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")  # PRAGMA takes no parameters
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does that); a failed rollback
            # must not hide what happened.
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise


def _trouble(data_dir: Path) -> str | None:
    """What the filesystem says is wrong with writing in ``data_dir``, if it says anything."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        fs = os.statvfs(existing)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY:
        return f"{existing} is on a read-only filesystem"
    # Root may also use the blocks the filesystem reserves for it.
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
    if free < LOW_SPACE:
        return f"the disk holding {existing} is full ({free} bytes free)"
    if not os.access(existing, os.W_OK):
        return f"{existing} is not writable by this user"
    return None


async def watch_file(
    store: Store, on_degraded: Callable[[], None], *, period: float = FILE_CHECK_PERIOD
) -> None:
    """Look every ``period`` seconds whether the store file is still in place, so that a
    deleted data directory is reported even while nothing is written; then call
    ``on_degraded`` once the store runs from memory, whatever the cause."""
    while store.degraded is None:
        await asyncio.sleep(period)
        store.check_file()
    on_degraded()


def _message(row: tuple[int, str, str, str | None, int]) -> QueuedMessage:
    seq, action, payload, transaction_ref, attempts = row
    return QueuedMessage(seq, action, json.loads(payload), transaction_ref, attempts)
