"""The shape of the code, checked: layers without cycles, small modules, one modality seam, honest DVC deps."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "graft"
# The module each DVC stage's command runs (besides graft.cli, which every command passes through).
STAGE_MODULES = {"prepare": "graft.data.prepare", "validate": "graft.data.validate", "select": "graft.select",
                 "train": "graft.train", "baseline": "graft.train", "selfcheck": "graft.select.selfcheck",
                 "evaluate": "graft.evaluate", "export": "graft.serve.export", "gate": "graft.promote.gate",
                 "curve": "graft.experiments.curve", "curve_plot": "graft.experiments.curve"}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("graft")


def module_file(name: str) -> Path:
    path = ROOT / "src" / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_import_linter_contracts_hold():
    res = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "3 kept, 0 broken" in res.stdout


def test_no_import_cycle_between_modules(graph):
    """Tarjan's strongly connected components over every import, function-level imports included."""
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("graft")}
             for m in graph.modules}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = set()
            while True:
                w = stack.pop()
                on.discard(w)
                part.add(w)
                if w == v:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    sys.setrecursionlimit(10_000)
    for m in sorted(edges):
        if m not in index:
            visit(m)
    assert cycles == []


def test_no_module_over_350_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 350}
    assert long == {}


# Ways code asks which modality it holds: comparing a modality name, sniffing a column, isinstance on a
# modality's classes or on image bytes, reading `modality` out of metadata to branch on it.
BRANCHES = [r"modality\s*[!=]=", r"[!=]=\s*[\"'](text|image)[\"']", r"[\"'](text|image)[\"']\s+(not\s+)?in\b",
            r"isinstance\([^)]*(bytes|Image|Text|Tokenizer|Processor)", r"\.image\b", r"\bif\s+image\b"]


def test_no_modality_branch_outside_the_modality_modules():
    found = []
    for path in SRC.rglob("*.py"):
        if "modalities" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if any(re.search(p, code) for p in BRANCHES):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []


def test_the_branch_patterns_do_catch_a_modality_branch():
    samples = ['if cfg.data.modality == "image":', 'if "image" in df.columns:', "isinstance(x, bytes)",
               'meta.get("modality") == "image"', "if pkg.image:"]
    assert all(any(re.search(p, s) for p in BRANCHES) for s in samples)


def test_every_stage_exposes_exactly_one_run():
    for stage, module in STAGE_MODULES.items():
        tree = ast.parse(module_file(module).read_text())
        runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
        assert len(runs) == 1, stage


def test_dvc_deps_cover_every_module_a_stage_imports(graph):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {}
    for stage, module in STAGE_MODULES.items():
        deps = [d for d in stages[stage]["deps"] if d.startswith("src/")]
        needed = graph.find_upstream_modules(module) | {module, "graft", "graft.cli", "graft.cli.commands"}
        files = {str(module_file(m).relative_to(ROOT)) for m in needed}
        lacking = sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
        if lacking:
            missing[stage] = lacking
    assert missing == {}


def test_the_dvc_deps_check_notices_a_missing_folder(graph):
    needed = graph.find_upstream_modules("graft.train")
    assert "graft.metrics.scores" in needed  # the best epoch is chosen by macro-F1: train depends on metrics


def test_the_documented_contracts_are_the_output_models():
    from graft.core.outputs import contracts_markdown

    text = (ROOT / "docs" / "contracts.md").read_text()
    block = text[text.index("<!-- contracts:start -->\n") + 25:text.index("<!-- contracts:end -->")]
    assert block == contracts_markdown()


def test_the_image_workspace_runs_the_same_dag():
    """image/dvc.yaml is a real file (DVC reads links as their target path in old revisions), equal to dvc.yaml."""
    image = ROOT / "image" / "dvc.yaml"
    assert not image.is_symlink()
    assert image.read_bytes() == (ROOT / "dvc.yaml").read_bytes(), "image/dvc.yaml differs: cp dvc.yaml image/"


def test_every_dvc_command_runs_graft_from_the_project_venv():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert all(s["cmd"].startswith("$DVC_ROOT/bin/graft ") for s in stages.values())
    assert os.access(ROOT / "bin" / "graft", os.X_OK)


def test_every_package_is_in_the_wheel():
    """pyproject lists packages by name: a new subpackage left out works editable but is missing from the image."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    found |= {f"graft_kfp.components.{p.parent.name}" for p in (ROOT / "components").glob("*/__init__.py")}
    assert found - listed == set()
