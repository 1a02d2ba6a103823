"""The Local Authorization List against a real store: its length limit, and its entries as the
central system sent them."""

from __future__ import annotations

from datetime import UTC, datetime

from ocpp.v16.enums import UpdateStatus, UpdateType

from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.local_list import LocalAuthList
from cp_pi.store import Store

from .conftest import Reopen


def local_list(store: Store) -> LocalAuthList:
    keys = ConfigurationKeys(store, number_of_connectors=1, has_lock=True, measurands=())
    return LocalAuthList(store, keys)


def accepted(id_tag: str) -> dict[str, object]:
    return {"id_tag": id_tag, "id_tag_info": {"status": "Accepted"}}


def test_an_update_that_would_pass_local_auth_list_max_length_fails_and_changes_nothing(
    store: Store, reopen: Reopen
) -> None:
    full = [(f"TAG{i:05d}", '{"status": "Accepted"}') for i in range(10_000)]
    with store.atomic():
        store.update_local_list(full=True, upserts=full, removals=[])
        store.put_setting("local_auth_list", "version", "1")
    listed = local_list(store)
    assert listed.size == 10_000

    replacing = [accepted("TAG00000"), {"id_tag": "TAG00001"}]  # one changed, one removed
    assert listed.update(2, UpdateType.differential, replacing) is UpdateStatus.accepted
    assert listed.update(3, UpdateType.differential, [accepted("NEW1"), accepted("NEW2")]) is (
        UpdateStatus.failed
    )

    again = local_list(reopen())
    assert (again.version(), again.size) == (2, 9_999)
    assert again.lookup("NEW1", now=datetime.now(UTC)) is None


def test_entries_keep_the_central_system_s_idtaginfo(store: Store) -> None:
    listed = local_list(store)
    entry = {
        "id_tag": "Tag-1",
        "id_tag_info": {
            "status": "Blocked",
            "expiry_date": "2030-01-01T00:00:00Z",
            "parent_id_tag": "P",
        },
    }
    assert listed.update(1, UpdateType.full, [entry]) is UpdateStatus.accepted

    assert listed.lookup("TAG-1", now=datetime(2029, 1, 1, tzinfo=UTC)) == {
        "status": "Blocked",
        "expiryDate": "2030-01-01T00:00:00Z",
        "parentIdTag": "P",
    }
    after = listed.lookup("tag-1", now=datetime(2031, 1, 1, tzinfo=UTC))
    assert after is not None
    assert after["status"] == "Expired"
