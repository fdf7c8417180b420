"""The `register` component's function: the gated package becomes a model version and the champion."""

from graft.core import config
from graft.promote import registry


def test_registers_the_package_as_the_champion(chain):
    version = chain.register.value
    assert isinstance(version, int) and version >= 1
    champion = registry.champion(config.from_dict(chain.config).registry)
    assert champion["version"] == version
