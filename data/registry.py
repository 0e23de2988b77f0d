"""The data layers by name, for the tools that read one layer's files (packing, checks,
benches): voc (VOC2011, VOCSegDataLayer), sbdd (SBD, SBDDSegDataLayer), nyud, siftflow,
pascalcontext. Which layer, module and folders each name means is core.catalog's; the
param_str is the one the experiments' prototxt carry, so what is packed or timed here is
what the experiments read. `from_layers` is how code outside layers/ imports the layers'
modules.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

from core.catalog import DATASETS, LAYER_NAMES, data_param
from core.defaults import REPO

NAMES = tuple(LAYER_NAMES)
NYUD_ALL_TOPS = ("color", "depth", "hha")
LAYERS_DIR = REPO / "layers"


def from_layers(module: str) -> ModuleType:
    """A module of layers/ (`voc_layers`, `seg_io`, …) imported the way Caffe imports it, by
    its top-level name (the venv puts layers/ on the path). The one way code outside layers/
    reaches them, so tests/test_architecture.py sees every use; on call, because most of them
    import Caffe."""
    if not (LAYERS_DIR / f"{module}.py").is_file():
        raise ValueError(f"{module!r} is not a module of {LAYERS_DIR}")
    return importlib.import_module(module)


def _layer(name: str):
    if name not in LAYER_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(LAYER_NAMES)}")
    dataset, phase = LAYER_NAMES[name]
    return DATASETS[dataset].layer(phase)


def module_and_class(name: str) -> tuple[str, str]:
    """(layer module, caffe.Layer class) of dataset layer `name`, as a prototxt names them."""
    layer = _layer(name)
    return layer.module, layer.layer


def layer_module(name: str):
    """Import the layer module of dataset `name` the way Caffe does (by top-level name;
    the venv puts layers/ on the path)."""
    return from_layers(_layer(name).module)


def layer_params(name: str, root: Path | str, split: str, **extra) -> dict:
    """The release's param_str for `name` under data root `root`, parsed, plus `extra`."""
    _layer(name)
    dataset, phase = LAYER_NAMES[name]
    _, text = data_param(dataset, phase, split, str(root), modalities=NYUD_ALL_TOPS)
    return {**ast.literal_eval(text), **extra}


def dataset_for(name: str, params: dict):
    """The plain (Caffe-free) dataset object a layer of `name` would build from `params`."""
    return getattr(layer_module(name), _layer(name).dataset_class)(params, f"{name} params")


def top_names(name: str, params: dict) -> list[str]:
    return dataset_for(name, params).top_names()
