"""What the app's lifespan does to the process: startup objects are kept out of garbage collection."""

from __future__ import annotations

import gc
from typing import Any

from todo_api.app import create_app
from todo_api.config import load_settings


async def test_objects_built_at_startup_are_frozen_while_serving_and_released_at_shutdown(
    base_settings: dict[str, Any],
) -> None:
    """Under load a full collection otherwise walks every module, route and validator: ~100 ms
    pauses every second or two that stall all in-flight requests (see bench/README.md)."""
    app = create_app(load_settings(**base_settings))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
