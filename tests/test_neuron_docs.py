"""The examples in the neuron core's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import spiknerf.neurons

MODULES = [m.name for m in pkgutil.iter_modules(spiknerf.neurons.__path__, "spiknerf.neurons.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_function_and_class_has_an_example_or_its_arguments():
    missing = []
    for name in spiknerf.neurons.__all__:
        obj = getattr(spiknerf.neurons, name)
        doc = getattr(obj, "__doc__", None) or ""
        if callable(obj) and not isinstance(obj, tuple) and not ("Example" in doc or "Args:" in doc
                                                                 or "Attributes:" in doc):
            missing.append(name)
    assert not missing, f"no Args or Example section: {missing}"
