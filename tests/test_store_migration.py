"""A data file written before the Local Authorization List and reservations existed opens with
everything it held, and gains their tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cp_pi.store import FILE_NAME, MIGRATIONS, Store


def test_a_file_of_schema_1_keeps_its_data_and_gains_the_new_tables(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    old.execute("INSERT INTO setting VALUES ('ocpp', 'HeartbeatInterval', '120')")
    old.execute(
        "INSERT INTO outbox (action, payload) VALUES ('StopTransaction', ?)",
        (json.dumps({"transactionId": 7}),),
    )
    old.close()

    store = Store.open(tmp_path)
    try:
        assert store.settings("ocpp") == {"HeartbeatInterval": "120"}
        (message,) = store.outbox()
        assert (message.action, message.payload) == ("StopTransaction", {"transactionId": 7})
        assert store.local_list_size() == 0
        assert store.reservations() == []
        with store.atomic():
            store.update_local_list(
                full=True, upserts=[("TAG", '{"status": "Accepted"}')], removals=[]
            )
        store.put_reservation(1, 1, 1, "TAG", None, "2030-01-01T00:00:00Z")
    finally:
        store.close()

    reopened = Store.open(tmp_path)
    try:
        assert reopened.local_list_entry("TAG") == '{"status": "Accepted"}'
        assert reopened.reservations() == [(1, 1, 1, "TAG", None, "2030-01-01T00:00:00Z")]
        version = reopened._db.execute("PRAGMA user_version").fetchone()[0]
        assert version == len(MIGRATIONS)
    finally:
        reopened.close()
