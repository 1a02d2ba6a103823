import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cp_pi.store import MIGRATIONS, Store, StoreError, TransactionRecord, watch_file


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    opened = Store.open(data_dir)
    yield opened
    opened.close()


def reopened(store: Store) -> Store:
    """Close and open again, as after a restart; the caller closes the result."""
    store.close()
    return Store.open(store.path.parent)


def transaction(ref: str, connector_id: int = 1) -> TransactionRecord:
    return TransactionRecord(
        ref=ref,
        connector_id=connector_id,
        id_tag="TAG-" + ref,
        meter_start=1000,
        started_at="2025-01-01T12:00:00Z",
    )


def stop_payload(meter_stop: int) -> dict[str, object]:
    return {"transactionId": -1, "meterStop": meter_stop, "reason": "Local"}


class BoomError(Exception):
    pass


def fail_after(store: Store, writes: Callable[[], None]) -> None:
    """Make the writes inside one atomic block, then fail before the block ends."""
    with store.atomic():
        writes()
        raise BoomError


# -- the file --------------------------------------------------------------------------------


def test_open_creates_the_data_dir_and_one_file(data_dir: Path) -> None:
    store = Store.open(data_dir / "deeper")
    store.close()
    assert store.path == data_dir / "deeper" / "cp-pi.sqlite3"
    assert store.path.is_file()


def test_write_ahead_logging_is_on_in_the_file(store: Store) -> None:
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"not a database at all " * (len(data) // 22 + 1), id="all"),
        pytest.param(lambda data: data[:4096] + b"\xa5" * (len(data) - 4096), id="after-header"),
    ],
)
def test_a_damaged_file_is_refused_with_a_store_error(
    store: Store, damage: Callable[[bytes], bytes]
) -> None:
    store.enqueue("StopTransaction", stop_payload(1500), transaction_ref="a")
    store.close()
    store.path.write_bytes(damage(store.path.read_bytes()))

    with pytest.raises(StoreError, match=re.escape(str(store.path))):
        Store.open(store.path.parent)


def test_a_file_from_a_newer_release_is_refused(store: Store) -> None:
    store.close()
    other = sqlite3.connect(store.path)
    other.execute("PRAGMA user_version = 99")
    other.close()

    with pytest.raises(StoreError, match="newer"):
        Store.open(store.path.parent)


def test_what_was_written_survives_a_crash_without_close(data_dir: Path) -> None:
    crash = (
        "import os, sys, pathlib\n"
        "from cp_pi.store import Store\n"
        "store = Store.open(pathlib.Path(sys.argv[1]))\n"
        "store.enqueue('StopTransaction', {'meterStop': 1500}, transaction_ref='a')\n"
        "os._exit(1)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(data_dir)], check=False)

    store = Store.open(data_dir)
    try:
        assert [m.payload for m in store.outbox()] == [{"meterStop": 1500}]
    finally:
        store.close()


# -- settings --------------------------------------------------------------------------------


def test_settings_are_kept_per_namespace_across_a_restart(store: Store) -> None:
    store.put_setting("ocpp", "HeartbeatInterval", "60")
    store.put_setting("ocpp", "HeartbeatInterval", "120")
    store.put_setting("availability", "1", "Inoperative")

    store = reopened(store)
    try:
        assert store.settings("ocpp") == {"HeartbeatInterval": "120"}
        assert store.settings("availability") == {"1": "Inoperative"}
        assert store.settings("nothing") == {}
    finally:
        store.close()


def test_clearing_a_namespace_leaves_the_others(store: Store) -> None:
    store.put_setting("authorization_cache", "TAG", "{}")
    store.put_setting("ocpp", "HeartbeatInterval", "60")

    store.clear_settings("authorization_cache")

    assert store.settings("authorization_cache") == {}
    assert store.settings("ocpp") == {"HeartbeatInterval": "60"}


# -- outbox ----------------------------------------------------------------------------------


def test_queued_messages_come_back_in_order_after_a_restart(store: Store) -> None:
    first = store.enqueue("StartTransaction", {"meterStart": 1000}, transaction_ref="a")
    second = store.enqueue("MeterValues", {"transactionId": -1}, transaction_ref="a")
    third = store.enqueue("StopTransaction", stop_payload(1500), transaction_ref="a")

    store = reopened(store)
    try:
        assert [(m.seq, m.action) for m in store.outbox()] == [
            (first, "StartTransaction"),
            (second, "MeterValues"),
            (third, "StopTransaction"),
        ]
        oldest = store.next_message()
        assert oldest is not None
        assert (oldest.action, oldest.payload, oldest.transaction_ref) == (
            "StartTransaction",
            {"meterStart": 1000},
            "a",
        )
    finally:
        store.close()


def test_the_next_message_after_a_removal_is_the_following_one(store: Store) -> None:
    first = store.enqueue("StartTransaction", {"meterStart": 1000})
    second = store.enqueue("StopTransaction", stop_payload(1500))

    store.remove(first)
    store.remove(first)  # a second answer to the same message changes nothing

    assert [m.seq for m in store.outbox()] == [second]
    assert store.enqueue("StatusNotification", {}) > second  # seq never goes back


def test_an_empty_outbox_has_no_next_message(store: Store) -> None:
    assert store.next_message() is None
    assert store.outbox() == []


def test_attempts_are_counted_and_remembered(store: Store) -> None:
    seq = store.enqueue("StopTransaction", stop_payload(1500))

    assert store.record_attempt(seq) == 1
    assert store.record_attempt(seq) == 2
    store = reopened(store)
    try:
        assert store.record_attempt(seq) == 3
        assert [m.attempts for m in store.outbox()] == [3]
    finally:
        store.close()


def test_counting_an_attempt_for_a_removed_message_is_an_error(store: Store) -> None:
    seq = store.enqueue("StopTransaction", stop_payload(1500))
    store.remove(seq)

    with pytest.raises(KeyError):
        store.record_attempt(seq)


def test_the_transaction_id_reaches_only_that_transactions_messages(store: Store) -> None:
    store.begin_transaction(transaction("a", connector_id=1))
    store.begin_transaction(transaction("b", connector_id=2))
    store.enqueue("StartTransaction", {"connectorId": 1, "meterStart": 1000}, transaction_ref="a")
    store.enqueue("MeterValues", {"transactionId": -1, "meterValue": []}, transaction_ref="a")
    store.enqueue("StopTransaction", stop_payload(1200), transaction_ref="b")
    store.enqueue("StopTransaction", stop_payload(1500), transaction_ref="a")

    store.resolve_transaction_id("a", 42)

    assert [(m.transaction_ref, m.payload) for m in store.outbox()] == [
        ("a", {"connectorId": 1, "meterStart": 1000}),
        ("a", {"transactionId": 42, "meterValue": []}),
        ("b", stop_payload(1200)),
        ("a", {"transactionId": 42, "meterStop": 1500, "reason": "Local"}),
    ]
    ids = {tx.ref: tx.transaction_id for tx in store.open_transactions()}
    assert ids == {"a": 42, "b": None}


def test_a_transaction_started_and_stopped_offline_still_gets_its_id(store: Store) -> None:
    store.begin_transaction(transaction("a"))
    store.enqueue("StartTransaction", {"meterStart": 1000}, transaction_ref="a")
    with store.atomic():
        store.end_transaction("a")
        store.enqueue("StopTransaction", stop_payload(1500), transaction_ref="a")

    store.resolve_transaction_id("a", 7)

    assert store.outbox()[-1].payload["transactionId"] == 7


# -- transactions ----------------------------------------------------------------------------


def test_an_open_transaction_and_its_last_meter_survive_a_restart(store: Store) -> None:
    store.begin_transaction(transaction("a"))
    store.update_transaction_meter("a", 1234)
    store.resolve_transaction_id("a", 42)

    store = reopened(store)
    try:
        assert store.open_transactions() == [
            TransactionRecord(
                ref="a",
                connector_id=1,
                id_tag="TAG-a",
                meter_start=1000,
                started_at="2025-01-01T12:00:00Z",
                transaction_id=42,
                last_meter_wh=1234,
            )
        ]
    finally:
        store.close()


def test_an_ended_transaction_is_no_longer_open(store: Store) -> None:
    store.begin_transaction(transaction("a", connector_id=1))
    store.begin_transaction(transaction("b", connector_id=2))

    store.end_transaction("a")

    assert [tx.ref for tx in store.open_transactions()] == ["b"]


def test_meter_updates_for_an_unknown_transaction_are_an_error(store: Store) -> None:
    store.begin_transaction(transaction("a"))
    store.end_transaction("a")

    with pytest.raises(KeyError):
        store.update_transaction_meter("a", 1500)
    with pytest.raises(KeyError):
        store.end_transaction("a")


def test_starting_the_same_transaction_twice_is_refused(store: Store) -> None:
    store.begin_transaction(transaction("a", connector_id=1))

    with pytest.raises(StoreError):
        store.begin_transaction(transaction("a", connector_id=2))

    assert [tx.connector_id for tx in store.open_transactions()] == [1]


# -- atomic ----------------------------------------------------------------------------------


def test_a_failing_block_leaves_no_write_behind(store: Store) -> None:
    store.begin_transaction(transaction("a"))

    def stop_and_make_inoperative() -> None:
        store.end_transaction("a")
        store.enqueue("StopTransaction", stop_payload(1500), transaction_ref="a")
        store.put_setting("availability", "1", "Inoperative")

    with pytest.raises(BoomError):
        fail_after(store, stop_and_make_inoperative)

    store = reopened(store)
    try:
        assert [tx.ref for tx in store.open_transactions()] == ["a"]
        assert store.outbox() == []
        assert store.settings("availability") == {}
    finally:
        store.close()


def test_a_nested_block_is_undone_with_the_block_around_it(store: Store) -> None:
    def queue_in_own_block() -> None:
        with store.atomic():
            store.enqueue("StopTransaction", stop_payload(1500))

    with pytest.raises(BoomError):
        fail_after(store, queue_in_own_block)

    assert store.outbox() == []


def test_a_block_that_ends_normally_keeps_every_write(store: Store) -> None:
    with store.atomic():
        store.begin_transaction(transaction("a"))
        store.enqueue("StartTransaction", {"meterStart": 1000}, transaction_ref="a")

    store = reopened(store)
    try:
        assert [tx.ref for tx in store.open_transactions()] == ["a"]
        assert [m.action for m in store.outbox()] == ["StartTransaction"]
    finally:
        store.close()


# -- the file taken away, a full disk, a read-only filesystem ----------------------------------


def test_a_deleted_data_directory_moves_the_queue_to_memory(
    store: Store, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.enqueue("StartTransaction", {"connectorId": 1}, transaction_ref="a")
    store.begin_transaction(transaction("a"))
    shutil.rmtree(data_dir)

    store.enqueue("StopTransaction", stop_payload(10), transaction_ref="a")

    assert store.degraded == f"{data_dir / 'cp-pi.sqlite3'} was deleted while in use"
    assert "running from memory" in caplog.text
    assert caplog.records[-1].levelname == "ERROR"
    assert [m.action for m in store.outbox()] == ["StartTransaction", "StopTransaction"]
    assert [t.ref for t in store.open_transactions()] == ["a"]
    assert not data_dir.exists()  # not made again behind the back of whoever removed it


def test_a_replaced_store_file_is_noticed_before_the_next_write(
    store: Store, data_dir: Path
) -> None:
    store.enqueue("MeterValues", {"connectorId": 1})
    stranger = data_dir / "other"
    stranger.write_bytes(b"")
    os.replace(stranger, data_dir / "cp-pi.sqlite3")

    store.put_setting("availability", "1", "Inoperative")

    assert store.degraded is not None
    assert "replaced by another file" in store.degraded
    assert [m.action for m in store.outbox()] == ["MeterValues"]
    assert (data_dir / "cp-pi.sqlite3").read_bytes() == b""  # the newcomer is left alone


async def test_a_deletion_is_reported_while_nothing_is_written(
    store: Store, data_dir: Path
) -> None:
    store.enqueue("StopTransaction", stop_payload(5))
    told = asyncio.Event()
    watcher = asyncio.create_task(watch_file(store, told.set, period=0.01))
    await asyncio.sleep(0.03)
    assert not told.is_set()

    shutil.rmtree(data_dir)

    async with asyncio.timeout(2):
        await told.wait()
    await watcher
    assert store.degraded is not None
    assert "deleted" in store.degraded
    assert [m.action for m in store.outbox()] == ["StopTransaction"]


def in_private_mounts(data_dir: Path, mount: str, script: str) -> str:
    """Run ``script`` (Python, printing its findings) in a mount namespace of its own, after
    the shell commands ``mount`` changed the filesystem under ``data_dir`` there: a real full
    or read-only filesystem, which root would not get from chmod."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs root and mount namespaces (unshare -m)")
    data_dir.mkdir(parents=True, exist_ok=True)
    command = f'{mount} && exec "$0" -c "$1"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command, sys.executable, script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=data_dir,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("left_free", [0, 44 * 1024])
def test_a_full_disk_at_boot_is_reported_as_a_full_disk(data_dir: Path, left_free: int) -> None:
    script = f"""
import logging, os
from pathlib import Path
from cp_pi.store import Store
logging.disable()
try:
    with open("filler", "wb") as filler:
        for _ in range(256):  # never more than 1 MiB, should the mount not be the small one
            filler.write(bytes(4096))
            filler.flush()
except OSError:
    pass
os.truncate("filler", max(0, os.path.getsize("filler") - {left_free}))
print(Store.open_or_memory(Path.cwd() / "data").degraded)
"""
    out = in_private_mounts(
        data_dir, 'mount -t tmpfs -o size=256k tmpfs "$PWD" && cd "$PWD"', script
    )

    assert "cannot write" in out
    assert "is full (" in out
    assert "cannot rollback" not in out  # what SQLite said once it had rolled back by itself


def test_a_read_only_filesystem_at_boot_is_named_and_the_run_lock_refused(data_dir: Path) -> None:
    script = """
import logging
from pathlib import Path
from cp_pi.runlock import RunLock
from cp_pi.store import Store
logging.disable()
store = Store.open_or_memory(Path.cwd())
store.enqueue("StatusNotification", {"connectorId": 0})
print(store.degraded)
try:
    RunLock(Path.cwd()).acquire()
except OSError as error:
    print("run lock:", error.strerror)
"""
    mount = 'mount --bind "$PWD" "$PWD" && mount -o remount,bind,ro "$PWD" && cd "$PWD"'
    out = in_private_mounts(data_dir, mount, script)

    assert f"{data_dir} is on a read-only filesystem" in out
    assert "run lock: Read-only file system" in out


# -- charging profiles ---------------------------------------------------------------------


def test_a_file_from_before_smart_charging_keeps_its_data_and_gains_profiles(
    data_dir: Path,
) -> None:
    """A store written by a release without charging profiles (schema version 1) opens with its
    queue and settings intact, and takes profiles from then on."""
    data_dir.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(data_dir / "cp-pi.sqlite3", isolation_level=None)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    old.execute("INSERT INTO setting VALUES ('ocpp', 'HeartbeatInterval', '60')")
    old.close()

    store = Store.open(data_dir)
    try:
        assert store.settings("ocpp") == {"HeartbeatInterval": "60"}
        assert store.charging_profiles() == []
        store.replace_charging_profiles([], [(7, 0, {"charging_profile_id": 7})])
    finally:
        store.close()
    store = Store.open(data_dir)
    try:
        assert store.charging_profiles() == [(0, {"charging_profile_id": 7})]
    finally:
        store.close()


def test_replacing_charging_profiles_is_one_write(store: Store) -> None:
    store.replace_charging_profiles([], [(1, 0, {"a": 1}), (2, 1, {"b": 2})])
    store.replace_charging_profiles([1], [(2, 1, {"b": 3}), (3, 1, {"c": 4})])
    assert store.charging_profiles() == [(1, {"b": 3}), (1, {"c": 4})]
    with pytest.raises(BoomError):
        fail_after(store, lambda: store.replace_charging_profiles([2, 3], []))
    assert store.charging_profiles() == [(1, {"b": 3}), (1, {"c": 4})]


def test_charging_profiles_survive_a_crash_without_close(data_dir: Path) -> None:
    crash = (
        "import os, sys, pathlib\n"
        "from cp_pi.store import Store\n"
        "store = Store.open(pathlib.Path(sys.argv[1]))\n"
        "store.replace_charging_profiles([], [(4, 0, {'charging_profile_id': 4})])\n"
        "os._exit(1)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(data_dir)], check=False)

    store = Store.open(data_dir)
    try:
        assert store.charging_profiles() == [(0, {"charging_profile_id": 4})]
    finally:
        store.close()
