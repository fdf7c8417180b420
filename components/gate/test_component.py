"""The `gate` component's function: the verdict as a boolean the pipeline branches on, and its table."""

from pathlib import Path

from graft.core import outputs


def test_returns_the_verdict_and_registers_nothing_itself(chain):
    from graft.core import config
    from graft.promote import registry

    out = chain.gate
    written = outputs.read(out.verdict.path, "gate")
    assert out.value is True and written["passed"] is True and out.verdict.metadata == {"passed": 1.0}
    assert written["registered"] is None  # registering is the register task's, under dsl.If(passed)
    if "register" not in vars(chain):  # before the register task ran, the registry has no champion
        assert registry.champion(config.from_dict(chain.config).registry) is None
    table = Path(out.table.path).read_text()
    assert all(c["name"] in table for c in written["checks"])
