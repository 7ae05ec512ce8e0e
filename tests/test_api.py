"""The API: explicit keyword arguments whose types and defaults are the configs' (one source of truth),
numpydoc docstrings, and defaults that agree with the functions the API delegates to."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pydoc

import pytest

import fewgan
from fewgan import api
from fewgan.gpnn import GPNNConfig
from fewgan.singan.config import SinGANConfig
from fewgan.stylegan2.config import StyleGAN2Config

PUBLIC = [name for name, fn in vars(api).items()
          if inspect.isfunction(fn) and fn.__module__ == api.__name__ and not name.startswith("_")]


def _type_text(field) -> str:
    t = field.type if isinstance(field.type, str) else repr(field.type)
    return t.replace("Optional[int]", "int | None").replace("Optional[float]", "float | None")


@pytest.mark.parametrize("fn, cls", [(api.train_singan, SinGANConfig), (api.train_stylegan2, StyleGAN2Config),
                                     (api.gpnn, GPNNConfig)])
def test_training_options_are_the_config_fields(fn, cls):
    params = inspect.signature(fn).parameters
    fields = dataclasses.fields(cls)
    names = [p for p in params if p in {f.name for f in fields}]
    assert names == [f.name for f in fields]  # every field, in the dataclass's order, nothing else
    for f in fields:
        p = params[f.name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f.name
        assert p.annotation == _type_text(f), f.name
        assert p.default.value == f.default and repr(p.default) == repr(f.default), f.name


def test_every_public_function_has_explicit_documented_arguments():
    assert {"train_singan", "train_stylegan2", "load", "sample", "generate", "evaluate", "report"} <= set(PUBLIC)
    for name in PUBLIC:
        fn = getattr(api, name)
        doc = inspect.getdoc(fn) or ""
        assert "Parameters\n----------" in doc and "Returns\n-------" in doc, name
        for p in inspect.signature(fn).parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:  # only synth's rendering parameters, documented
                assert name == "synth" and "**particles" in doc, name
                continue
            assert p.name in doc, f"{name}: {p.name} undocumented"


@pytest.mark.parametrize("name, target", [
    ("read_image", "fewgan.data.images:read_image"), ("load_folder", "fewgan.data.folder:load_folder"),
    ("synth", "fewgan.data.synthetic:synth"), ("sample", "fewgan.singan.sample:sample_to_folder"),
    ("generate", "fewgan.stylegan2.generate:generate_to_folder"), ("evaluate", "fewgan.metrics.evaluate:evaluate"),
    ("report", "fewgan.report.html:write_report"), ("write_image", "fewgan.data.images:write_image"),
])
def test_defaults_agree_with_the_function_delegated_to(name, target):
    import importlib

    module, attr = target.split(":")
    inner = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
    outer = inspect.signature(getattr(api, name)).parameters
    shared = [p for p in outer if p in inner and outer[p].default is not inspect.Parameter.empty]
    assert shared, name
    for p in shared:
        assert outer[p].default == inner[p].default, f"{name}({p}=...): {outer[p].default!r} != {inner[p].default!r}"


def test_help_lists_the_options():
    text = pydoc.render_doc(fewgan.train_singan, renderer=pydoc.plaintext)
    assert "steps: 'int' = 2000" in text and "max_size: 'int' = 200" in text and "conv: 'str' = 'auto'" in text
    assert "steps : int, default 2000" in text
    text = pydoc.render_doc(fewgan.train_stylegan2, renderer=pydoc.plaintext)
    assert "kimg: 'float | None' = None" in text and "seed: 'int' = 0" in text


def test_an_option_left_at_its_default_is_not_given(capsys):
    """A preset applies unless the option is given; the dataclass default does not count as given."""
    fewgan.train_stylegan2(dry_run=True, preset="seed")
    assert json.loads(capsys.readouterr().out)["config"]["classical"] == "seed"
    fewgan.train_stylegan2(dry_run=True, preset="seed", classical="none")
    assert json.loads(capsys.readouterr().out)["config"]["classical"] == "none"
