"""The data layers by dataset name, with the release's param_str under a data root.

Names: voc (VOC2011, VOCSegDataLayer), sbdd (SBD, SBDDSegDataLayer), nyud, siftflow,
pascalcontext. The folder layout under the root is the one nets.datasets writes into the
prototxt, so what is packed or timed here is what the experiments read.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from nets.datasets import data_param

LAYERS_DIR = Path(__file__).resolve().parents[1] / "layers"
# name → (layer module, layer class, dataset class, dataset name for nets.datasets, phase)
LAYERS = {
    "voc": ("voc_layers", "VOCSegDataLayer", "VOCSegData", "voc", "test"),
    "sbdd": ("voc_layers", "SBDDSegDataLayer", "SBDDSegData", "voc", "train"),
    "nyud": ("nyud_layers", "NYUDSegDataLayer", "NYUDSegData", "nyud", "train"),
    "siftflow": ("siftflow_layers", "SIFTFlowSegDataLayer", "SIFTFlowSegData", "siftflow",
                 "train"),
    "pascalcontext": ("pascalcontext_layers", "PASCALContextSegDataLayer",
                      "PASCALContextSegData", "pascalcontext", "train"),
}
NYUD_ALL_TOPS = ("color", "depth", "hha")


def use_layers() -> None:
    """Put layers/ on sys.path: Caffe imports the layer modules by top-level name."""
    if str(LAYERS_DIR) not in sys.path:
        sys.path.insert(0, str(LAYERS_DIR))


def layer_module(name: str):
    """Import the layer module of dataset `name` the way Caffe does."""
    if name not in LAYERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(LAYERS)}")
    use_layers()
    return importlib.import_module(LAYERS[name][0])


def layer_params(name: str, root: Path | str, split: str, **extra) -> dict:
    """The release's param_str for `name` under data root `root`, parsed, plus `extra`."""
    if name not in LAYERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(LAYERS)}")
    _, _, _, dataset, phase = LAYERS[name]
    _, text = data_param(dataset, phase, split, str(root), modalities=NYUD_ALL_TOPS)
    return {**ast.literal_eval(text), **extra}


def dataset_for(name: str, params: dict):
    """The plain (Caffe-free) dataset object a layer of `name` would build from `params`."""
    return getattr(layer_module(name), LAYERS[name][2])(params, f"{name} params")


def top_names(name: str, params: dict) -> list[str]:
    return dataset_for(name, params).top_names()
