"""The architecture, enforced: which parts of diffusio may import which (docs/architecture.md).

Every import in every module is read from its syntax tree, including imports inside functions,
so a lazy import cannot slip a layer violation past the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "diffusio"

# package prefix -> prefixes it must never import
FORBIDDEN = {
    "diffusio.generative.core": ["diffusio.generative.trust", "diffusio.generative.evaluation",
                                 "diffusio.generative.pipeline", "diffusio.generative.editing",
                                 "diffusio.generative.cheap", "diffusio.generative.training",
                                 "diffusio.generative.nets", "diffusio.cli", "diffusio.studio", "diffusio.spread"],
    "diffusio.generative.nets": ["diffusio.generative.core", "diffusio.generative.trust",
                                 "diffusio.generative.evaluation", "diffusio.cli", "diffusio.studio"],
    "diffusio.generative": ["diffusio.spread", "diffusio.tabular", "diffusio.molecules", "diffusio.video",
                            "diffusio.cli", "diffusio.studio"],
    "diffusio.molecules": ["diffusio.spread", "diffusio.tabular", "diffusio.cli", "diffusio.studio",
                           "diffusio.generative.trust", "diffusio.generative.pipeline", "diffusio.generative.evaluation"],
    "diffusio.tabular": ["diffusio.spread", "diffusio.cli", "diffusio.studio", "diffusio.generative.trust",
                         "diffusio.generative.pipeline", "diffusio.generative.evaluation"],
    "diffusio.video": ["diffusio.spread", "diffusio.tabular", "diffusio.molecules", "diffusio.cli", "diffusio.studio",
                       "diffusio.generative.trust", "diffusio.generative.pipeline"],
    "diffusio.spread": ["diffusio.generative", "diffusio.video", "diffusio.tabular", "diffusio.cli", "diffusio.studio"],
    "diffusio.spread.graph": ["diffusio.spread.apps"],
    "diffusio.spread.models": ["diffusio.spread.apps"],
    "diffusio.spread.simulate": ["diffusio.spread.apps"],
    "diffusio.spread.threads": ["diffusio.spread.apps"],
    "diffusio.spread.scratch": ["diffusio.spread.apps"],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("diffusio")}


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        name = module_name(path)
        for owner, banned in FORBIDDEN.items():
            if name != owner and not name.startswith(owner + "."):
                continue
            for imported in imports_of(path):
                for prefix in banned:
                    if imported == prefix or imported.startswith(prefix + "."):
                        out.append(f"{name} imports {imported} (rule: {owner} must not import {prefix})")
    return sorted(set(out))


def test_no_layer_is_crossed():
    assert violations() == []


def test_the_rule_catches_a_lazy_import(tmp_path):
    """The checker itself must be able to fail: a function-level import in core is caught."""
    fake = tmp_path / "diffusio" / "generative" / "core"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from diffusio.generative.trust.watermark import marking\n")
    global SRC
    saved, SRC = SRC, tmp_path / "diffusio"
    try:
        assert any("core.bad imports diffusio.generative.trust" in v for v in violations())
    finally:
        SRC = saved


@pytest.mark.parametrize("module", ["diffusio.generative", "diffusio.spread"])
def test_public_imports_keep_working(module):
    import importlib

    mod = importlib.import_module(module)
    assert hasattr(mod, "Generator" if module.endswith("generative") else "simulate")
