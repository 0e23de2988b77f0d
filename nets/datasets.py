"""How each dataset enters a net: the Python data layer, its param_str, its tops.

The layer modules and classes are the release's (layers/ provides them). param_str keys
are written in the order the release's Python 2 generator printed them, so the generated
prototxt match its bytes under Python 3 too.
"""

from __future__ import annotations

from dataclasses import dataclass

SEED = 1337
VOC_MEAN = (104.00699, 116.66877, 122.67892)


@dataclass(frozen=True)
class DataLayer:
    module: str
    layer: str
    keys: tuple[str, ...]          # param_str key order (the release's)

    def param_str(self, values: dict) -> str:
        missing = set(self.keys) ^ set(values)
        if missing:
            raise ValueError(f"{self.module}.{self.layer}: param_str keys differ: {missing}")
        return "{" + ", ".join(f"{k!r}: {values[k]!r}" for k in self.keys) + "}"


SBDD = DataLayer("voc_layers", "SBDDSegDataLayer", ("sbdd_dir", "seed", "split", "mean"))
VOC = DataLayer("voc_layers", "VOCSegDataLayer", ("voc_dir", "seed", "split", "mean"))
NYUD = DataLayer("nyud_layers", "NYUDSegDataLayer", ("tops", "seed", "nyud_dir", "split"))
SIFTFLOW = DataLayer("siftflow_layers", "SIFTFlowSegDataLayer",
                     ("siftflow_dir", "seed", "split"))
PASCALCONTEXT = DataLayer("pascalcontext_layers", "PASCALContextSegDataLayer",
                          ("context_dir", "seed", "split", "voc_dir"))


def data_param(dataset: str, phase: str, split: str, root: str, *, seed: int = SEED,
               modalities: tuple[str, ...] = ()) -> tuple[DataLayer, str]:
    """The data layer and its param_str for one phase of a dataset under data root `root`."""
    if dataset == "voc":
        if phase == "train":
            return SBDD, SBDD.param_str(dict(sbdd_dir=f"{root}/sbdd/dataset", seed=seed,
                                             split=split, mean=VOC_MEAN))
        return VOC, VOC.param_str(dict(voc_dir=f"{root}/pascal/VOC2011", seed=seed,
                                       split=split, mean=VOC_MEAN))
    if dataset == "nyud":
        return NYUD, NYUD.param_str(dict(tops=[*modalities, "label"], seed=seed,
                                         nyud_dir=f"{root}/nyud", split=split))
    if dataset == "siftflow":
        return SIFTFLOW, SIFTFLOW.param_str(dict(siftflow_dir=f"{root}/sift-flow", seed=seed,
                                                 split=split))
    if dataset == "pascalcontext":
        return PASCALCONTEXT, PASCALCONTEXT.param_str(dict(
            context_dir=f"{root}/pascal-context", seed=seed, split=split,
            voc_dir=f"{root}/pascal"))
    raise ValueError(f"unknown dataset {dataset!r}")


# Input channels per modality for deploy nets (NYUD's depth is one channel).
MODALITY_CHANNELS = {"data": 3, "color": 3, "hha": 3, "depth": 1}
