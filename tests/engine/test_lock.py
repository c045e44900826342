"""The engine's lock: a chat answer goes before a vector build, a build before calibration."""

from __future__ import annotations

import threading
import time

from steertui.engine.lock import PriorityLock


def test_waiters_take_the_lock_by_priority_not_by_arrival() -> None:
    lock = PriorityLock()
    order: list[str] = []
    release = threading.Event()
    arrived = threading.Semaphore(0)

    def holder() -> None:
        with lock.hold("search"):
            release.wait(10)

    def waiter(priority: str) -> None:
        arrived.release()
        with lock.hold(priority):  # type: ignore[arg-type]
            order.append(priority)

    first = threading.Thread(target=holder)
    first.start()
    while not lock.busy:
        time.sleep(0.001)
    threads = []
    for priority in ("search", "build", "chat"):  # arriving lowest first
        t = threading.Thread(target=waiter, args=(priority,))
        t.start()
        arrived.acquire()
        time.sleep(0.05)  # let it reach the wait
        threads.append(t)
    release.set()
    for t in [first, *threads]:
        t.join(10)
    assert order == ["chat", "build", "search"]


def test_the_lock_is_reentrant_in_one_thread() -> None:
    lock = PriorityLock()
    with lock.hold("search"), lock.hold("chat"), lock.hold("build"):
        assert lock.busy
    assert not lock.busy


def test_a_build_lets_chat_in_between_batches_but_not_calibration() -> None:
    """A vector build holds the lock throughout; between its batches a waiting chat answer
    goes first, while a waiting calibration batch waits for the whole build."""
    lock = PriorityLock()
    order: list[str] = []
    waiting = threading.Semaphore(0)

    def waiter(priority: str) -> None:
        waiting.release()
        with lock.hold(priority):  # type: ignore[arg-type]
            order.append(priority)

    with lock.hold("build"):
        threads = [threading.Thread(target=waiter, args=(p,)) for p in ("search", "chat")]
        for t in threads:
            t.start()
            waiting.acquire()
        time.sleep(0.1)  # both reach the wait
        order.append("build batch 1")
        lock.let_higher_in()
        order.append("build batch 2")
        lock.let_higher_in()  # nobody above waits now: goes straight on
        order.append("build batch 3")
    for t in threads:
        t.join(10)
    assert order == ["build batch 1", "chat", "build batch 2", "build batch 3", "search"]
