"""Fixtures for the app's tests: a fresh home, a store, the fake engine and provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steertui.home import Home
from steertui.store import Store
from steertui.tui.app import SteerApp, create_app
from tests.tui.fake_engine import FakeEngine, FakeProvider
from tests.tui.pilot import fake_clock, fixed_memory, record_notifications


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home").ensure()


@pytest.fixture
def store(home: Home) -> Iterator[Store]:
    s = Store.open(home.db_path)
    yield s
    s.close()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def make_app(home: Home, store: Store, engine: FakeEngine, provider: FakeProvider):
    def make(**kwargs: Any) -> SteerApp:
        options: dict[str, Any] = {
            "model": "fake",
            "home": home,
            "engine_factory": lambda model: engine,
            "store": store,
            "provider": provider,
            "memory_probe": fixed_memory,
            "clock": fake_clock(),
            "learn_grace_s": 0.05,  # LEARN's proposal applies at once unless a test refuses it
        }
        options.update(kwargs)
        app = create_app(**options)
        record_notifications(app)
        return app

    return make
