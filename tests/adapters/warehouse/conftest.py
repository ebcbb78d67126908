from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.warehouse import schema


@pytest.fixture(autouse=True)
def fresh_schema() -> Iterator[None]:
    """Tests change the warehouse's tables: never reuse another test's introspection."""
    schema.invalidate()
    yield
    schema.invalidate()
