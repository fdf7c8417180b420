"""Root conftest: the shared fixtures serve tests/ and the per-component tests under components/."""

pytest_plugins = ["tests.fixtures"]
