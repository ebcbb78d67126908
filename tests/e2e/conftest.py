import pytest

from tests.e2e.stack import running_stack


@pytest.fixture(scope="session")
def stack():
    """One set of real processes for the session; each test makes its own tenant."""
    with running_stack(workers=1) as running:
        yield running


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
