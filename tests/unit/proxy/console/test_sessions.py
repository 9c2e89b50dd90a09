"""The console's sessions: opened on login, found by their cookie, bounded in count and in time."""

from __future__ import annotations

from proxy.console.sessions import Sessions, same


def test_a_session_is_found_by_its_id_until_it_expires_or_is_closed() -> None:
    now = [0.0]
    sessions = Sessions(clock=lambda: now[0], ttl_s=60)
    one, two = sessions.open(), sessions.open()

    assert one.id != two.id
    assert one.csrf != one.id
    assert sessions.get(one.id) is one
    assert sessions.get(None) is None
    assert sessions.get("forged") is None
    sessions.close(two.id)
    assert sessions.get(two.id) is None
    now[0] = 60.0
    assert sessions.get(one.id) is None
    assert len(sessions) == 0


def test_the_oldest_session_goes_when_there_are_too_many() -> None:
    sessions = Sessions(limit=2)
    first, second, third = sessions.open(), sessions.open(), sessions.open()
    assert sessions.get(first.id) is None
    assert sessions.get(second.id) is second
    assert sessions.get(third.id) is third


def test_a_secret_is_the_same_only_when_every_byte_is() -> None:
    assert same("abc", "abc")
    assert not same("abd", "abc")
    assert not same(None, "abc")
    assert not same("", "abc")
