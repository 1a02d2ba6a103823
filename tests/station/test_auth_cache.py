from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cp_pi.station.auth_cache import AuthorizationCache
from cp_pi.store import Store

from .conftest import Reopen

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def accepted(expiry: datetime | None = None, **more: str) -> dict[str, str]:
    info = {"status": "Accepted", **more}
    if expiry is not None:
        info["expiryDate"] = expiry.isoformat().replace("+00:00", "Z")
    return info


def test_a_tag_is_answered_from_the_cache_as_the_csms_answered(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("TAG-1", accepted(parentIdTag="FLEET"))

    assert cache.lookup("TAG-1", now=NOW) == {"status": "Accepted", "parentIdTag": "FLEET"}
    assert cache.lookup("TAG-2", now=NOW) is None


def test_the_latest_answer_replaces_the_earlier_one(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("TAG-1", accepted())
    cache.update("TAG-1", {"status": "Blocked"})

    assert cache.lookup("TAG-1", now=NOW) == {"status": "Blocked"}


def test_id_tags_are_case_insensitive(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("abc123", accepted())

    assert cache.lookup("ABC123", now=NOW) == accepted()


def test_an_entry_is_gone_once_its_expiry_date_has_passed(store: Store) -> None:
    cache = AuthorizationCache(store)
    expiry = NOW + timedelta(hours=1)
    cache.update("TAG-1", accepted(expiry))

    assert cache.lookup("TAG-1", now=expiry) == accepted(expiry)
    assert cache.lookup("TAG-1", now=expiry + timedelta(seconds=1)) is None


def test_an_entry_without_expiry_date_does_not_expire(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("TAG-1", accepted())

    assert cache.lookup("TAG-1", now=NOW + timedelta(days=3650)) == accepted()


def test_an_unreadable_expiry_date_counts_as_expired(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("TAG-1", {"status": "Accepted", "expiryDate": "next tuesday"})

    assert cache.lookup("TAG-1", now=NOW) is None


def test_clearing_forgets_every_tag(store: Store) -> None:
    cache = AuthorizationCache(store)
    cache.update("TAG-1", accepted())
    cache.update("TAG-2", accepted())

    cache.clear()

    assert cache.lookup("TAG-1", now=NOW) is None
    assert cache.lookup("TAG-2", now=NOW) is None


def test_clearing_leaves_other_settings_alone(store: Store) -> None:
    store.put_setting("ocpp", "HeartbeatInterval", "60")

    AuthorizationCache(store).clear()

    assert store.settings("ocpp") == {"HeartbeatInterval": "60"}


def test_the_cache_survives_a_restart(store: Store, reopen: Reopen) -> None:
    expiry = NOW + timedelta(days=1)
    AuthorizationCache(store).update("TAG-1", accepted(expiry))

    cache = AuthorizationCache(reopen())

    assert cache.lookup("TAG-1", now=NOW) == accepted(expiry)
