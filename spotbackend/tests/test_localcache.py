"""The per-process layer of the hot caches (spotbackend/hotcache.py, LocalCache) against the real Redis:
a change of one entry reaches every process by name, and nothing read before a change is kept after it.
Two LocalCache objects on the same keys stand for two processes (or hosts)."""
import pytest

from spotbackend import hotcache
from spotbackend.hotcache import LocalCache, hot_client


@pytest.fixture
def two(settings):
    settings.HOT_LOCAL_CHECK_SECONDS = 0.0
    here = LocalCache("sb:test:layer", forget_key=lambda name: (name, ("also", name)))
    there = LocalCache("sb:test:layer", forget_key=lambda name: (name, ("also", name)))
    yield here, there
    LocalCache._all.remove(here)
    LocalCache._all.remove(there)


def filled(cache, **values):
    for key, value in values.items():
        assert cache.get(key) is None
        cache.put(key, value)
        cache.put(("also", key), value)
    return cache


def check():
    LocalCache.check_epochs()  # HOT_LOCAL_CHECK_SECONDS = 0: every call checks


def test_a_change_of_one_entry_drops_that_entry_everywhere_and_nothing_else(two):
    here, there = two
    check()
    filled(here, a="1", b="2")
    filled(there, a="1", b="2")
    epoch = hot_client().get("sb:test:layer")
    here.forget("a")
    assert here.entries.get("a") is None and here.entries.get(("also", "a")) is None  # here: at once
    assert there.entries.get("a") == "1"  # there: at its next check...
    check()
    assert there.get("a") is None and there.get(("also", "a")) is None
    assert there.get("b") == "2" and here.get("b") == "2"  # ...and only that entry
    assert hot_client().get("sb:test:layer") == epoch  # the layer's epoch did not move


def test_a_fill_read_before_a_change_by_name_is_not_kept(two):
    here, there = two
    check()
    assert there.get("a") is None  # a miss: the caller reads the database...
    here.forget("a")  # ...while another process changes that entry and says so
    check()
    there.put("a", "old")  # ...and the caller's fill arrives afterwards
    assert there.get("a") is None
    there.put("a", "new")  # read after the change: kept
    assert there.get("a") == "new"


def test_a_process_that_stopped_checking_drops_everything(two):
    """Log entries are trimmed after FORGET_LOG_SECONDS: a process that has not looked for half of that
    cannot know what it missed."""
    here, there = two
    check()
    filled(there, a="1", b="2")
    here.forget("a")
    LocalCache._checked_at -= hotcache.FORGET_LOG_SECONDS
    LocalCache.check_epochs()
    assert there.get("b") is None


def test_the_log_keeps_only_recent_changes(two, monkeypatch):
    here, _ = two
    monkeypatch.setattr(hotcache, "FORGET_LOG_SECONDS", 0.001)
    here.forget("a")
    for k in range(300):  # trimming is approximate (whole stream nodes): write enough to drop one
        here.forget(f"k{k}")
    assert hot_client().xlen("sb:test:layer:log") < 301
    assert 0 < hot_client().pttl("sb:test:layer:log") <= 2


def test_a_change_of_many_entries_moves_the_epoch(two, monkeypatch):
    here, there = two
    check()
    filled(there, a="1", b="2")
    monkeypatch.setattr(hotcache, "FORGET_MAX_NAMES", 2)
    epoch = hot_client().get("sb:test:layer")
    here.forget("x", "y", "z")
    assert hot_client().get("sb:test:layer") != epoch
    check()
    assert there.get("b") is None


def test_more_changes_than_worth_reading_drop_the_layer(two, monkeypatch):
    here, there = two
    check()
    filled(there, a="1", b="2")
    monkeypatch.setattr(hotcache, "FORGET_READ_MAX", 3)
    here.forget("x", "y", "z")
    check()
    assert there.get("a") is None and there.get("b") is None


def test_without_redis_forget_still_drops_here_and_never_raises(two, settings):
    here, _ = two
    check()
    filled(here, a="1")
    settings.HOTCACHE_REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    hotcache.hot_reset()
    here.entries["a"] = "1"
    here.forget("a")
    assert "a" not in here.entries
