"""The documentation keeps up with the code: every make target and every cdk.json key is
documented in README.md or a page under docs/, and the worked examples there are valid."""

from __future__ import annotations

import json
import re
from typing import get_args

import pytest
from pydantic import BaseModel

from stacks.config import CiConfig, EnvironmentConfig, load_environments
from tests.lambda_loader import ROOT


def _documentation() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def _targets() -> list[str]:
    """The targets ``make help`` lists (those with a ``## `` description)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z][a-z-]*):.*?## ", makefile, re.MULTILINE)


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of a config model, nested models' keys dotted (``job.on_delete``)."""
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        # An optional block (``PricingConfig | None``) is documented by its keys too.
        models = [
            kind
            for kind in (field.annotation, *get_args(field.annotation))
            if isinstance(kind, type) and issubclass(kind, BaseModel)
        ]
        keys += _keys(models[0], f"{key}.") if models else [key]
    return keys


@pytest.mark.parametrize("target", _targets())
def test_every_make_target_is_documented(target: str) -> None:
    assert f"make {target}" in _documentation(), f"make {target}: not in README.md or docs/"


@pytest.mark.parametrize(
    "key",
    [k for k in _keys(EnvironmentConfig) if k != "name"] + [f"ci.{k}" for k in _keys(CiConfig)],
)
def test_every_cdk_json_key_is_documented(key: str) -> None:
    text = _documentation()
    leaf = key.rsplit(".", 1)[-1]
    # A nested key may be documented by its own name in its section's table.
    assert f"`{key}`" in text or ("." in key and f"`{leaf}`" in text), (
        f"cdk.json key {key}: not in README.md or docs/"
    )


def test_the_worked_example_of_a_new_environment_is_valid() -> None:
    page = (ROOT / "docs" / "adding-an-environment.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(.*?)\n```", page, re.DOTALL)
    environments = json.loads("{" + block + "}")
    (config,) = load_environments({"environments": environments}, ROOT)
    assert (config.name, config.backend, config.region) == ("qa", "openai", "us-west-2")


def test_the_readme_fits_on_a_screen_and_links_only_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 400
    for page in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / page).is_file(), page
    for path in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|png))", path.read_text("utf-8")):
            assert (path.parent / target).resolve().is_file(), f"{path.name}: {target}"


def test_no_page_links_an_anchor_that_is_not_there() -> None:
    def anchors(text: str) -> set[str]:
        heads = re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}

    pages = {p: p.read_text("utf-8") for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]}
    for path, text in pages.items():
        for target, anchor in re.findall(r"\]\(([^)#:]*)#([^)]+)\)", text):
            linked = (path.parent / target).resolve() if target else path
            assert anchor in anchors(pages.get(linked, "")), f"{path.name}: {target}#{anchor}"
