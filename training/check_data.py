"""Read every file of a split before a long run, and report all the bad ones at once.

    make check-data DATASET=voc SPLIT=train [DATA=datasets]
    python -m training.check_data voc train --data DATA

A corrupt picture found after hours of training costs the hours; found here it costs a
pass of decoding. Each example goes through its data layer's own loading and checks
(seg_dataset.load_example: decodable, sizes agree, labels in range), so what passes here
passes in training. Examples that passed are cached by their files' sizes and
modification times (~/.cache/fcn-caffe/data-checks, or $FCN_DATA_CHECK_CACHE), so a
second check, and the automatic one before each long run, re-reads only changed files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from caffe.proto import caffe_pb2
from google.protobuf import text_format
from tqdm import tqdm

from core.errors import ReportedError, cli_main
from data.registry import from_layers
from evaluation.runtime import bar_interval
from nets.experiments import EXPERIMENTS, Experiment
from nets.generate import write_experiment


@dataclass
class CheckReport:
    split: str
    list_file: str
    examples: int = 0
    cached: int = 0
    bad: list[str] = field(default_factory=list)
    largest: tuple[int, int] = (0, 0)       # the H×W of the split's largest picture

    def summary(self) -> str:
        head = (f"{self.list_file}: {self.examples} examples, {len(self.bad)} bad "
                f"({self.examples - self.cached} read, {self.cached} unchanged since checked)")
        return "\n".join([head, *(f"  {line}" for line in self.bad)])


def cache_dir() -> Path:
    return Path(os.environ.get("FCN_DATA_CHECK_CACHE")
                or Path.home() / ".cache" / "fcn-caffe" / "data-checks")


def _data_layer(exp: Experiment, root: Path, split: str, phase_index: int):
    """(layer class, param_str) of the data layer reading `split` in phase phase_index."""
    splits = list(exp.splits)
    splits[phase_index] = split
    with tempfile.TemporaryDirectory(prefix="fcn-check-") as tmp:
        paths = write_experiment(exp.name, tmp, data_root=str(root.resolve()),
                                 splits=tuple(splits))
        net = caffe_pb2.NetParameter()
        text_format.Merge(paths["train" if phase_index == 0 else "test"].read_text(), net)
    layer = next(layer for layer in net.layer if layer.type == "Python")
    module = from_layers(layer.python_param.module)
    return getattr(module, layer.python_param.layer), layer.python_param.param_str


def _stats(source, refs) -> list | None:
    """(path, size, mtime_ns) of each file; None when they are not plain files (LMDB)."""
    stats = []
    for ref in refs:
        path = Path(source.where(ref))
        try:
            info = path.stat()
        except OSError:
            return None
        stats.append([str(path), info.st_size, info.st_mtime_ns])
    return stats


def check_split(exp: Experiment, root: Path, split: str, phase_index: int, *,
                progress: bool = True) -> CheckReport:
    """Load every example of `split` through the data layer of `exp`'s phase."""
    seg_data, seg_dataset = from_layers("seg_data"), from_layers("seg_dataset")
    open_source, parse_param_str = seg_data.open_source, seg_data.parse_param_str
    load_example, read_split = seg_dataset.load_example, seg_dataset.read_split
    DataError = from_layers("seg_io").DataError

    root = Path(root)
    layer_class, param_str = _data_layer(exp, root, split, phase_index)
    params = parse_param_str(param_str, f"{layer_class.__name__} param_str")
    dataset = layer_class.dataset_class(params, f"{layer_class.__name__} param_str")
    source = open_source(params, dataset)
    report = CheckReport(split, source.where(dataset.split_file()))
    try:
        dataset.prepare(source)
        indices = read_split(dataset, source)
    except DataError as e:
        report.bad.append(str(e))
        return report
    key = hashlib.sha1(f"{report.list_file}|{layer_class.__name__}|{param_str}".encode())
    cache_file = cache_dir() / f"{key.hexdigest()}.json"
    try:
        passed = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        passed = {}
    report.examples = len(indices)
    for index in tqdm(indices, desc=f"check {split}", unit="img", disable=not progress,
                      leave=False, mininterval=bar_interval()):
        stats = _stats(source, dataset.files(index).values())
        entry = passed.get(index)
        if stats is not None and isinstance(entry, dict) and entry.get("files") == stats:
            report.cached += 1
            _note_size(report, entry["size"])
            continue
        try:
            tops = load_example(dataset, source, index)
        except DataError as e:
            report.bad.append(str(e))
            passed.pop(index, None)
            continue
        size = list(next(iter(tops.values())).shape[-2:])
        _note_size(report, size)
        if stats is not None:
            passed[index] = {"files": stats, "size": size}
    source.close()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(passed))
    except OSError:
        pass  # a cache that cannot be written only costs time
    return report


def _note_size(report: CheckReport, size) -> None:
    if size[0] * size[1] > report.largest[0] * report.largest[1]:
        report.largest = (int(size[0]), int(size[1]))


def check_experiment(exp: Experiment, root: Path, *,
                     progress: bool = True) -> tuple[int, int]:
    """Check both splits an experiment reads; raise ValueError listing every bad file.
    Returns the H×W of the largest picture (what a step's memory depends on)."""
    reports = [check_split(exp, root, split, phase, progress=progress)
               for phase, split in enumerate(exp.splits)]
    bad = [line for report in reports for line in report.bad]
    if bad:
        raise ValueError(f"{len(bad)} bad file(s) in the splits of {exp.name}:\n  "
                         + "\n  ".join(bad)
                         + "\nfix or replace them (make check-data lists them again)")
    return max((r.largest for r in reports), key=lambda hw: hw[0] * hw[1])


def experiment_for(dataset: str, split: str) -> tuple[Experiment, int]:
    """An experiment of `dataset` and the phase whose data layer reads `split`."""
    candidates = [exp for exp in EXPERIMENTS.values() if exp.dataset == dataset]
    if not candidates:
        datasets = sorted({exp.dataset for exp in EXPERIMENTS.values()})
        raise ValueError(f"unknown dataset {dataset!r}; choose from {datasets}")
    for exp in candidates:
        if split == exp.splits[0]:
            return exp, 0
    return candidates[0], 1


class BadExamples(ReportedError):
    """The check found bad files (listed on stdout): exit 1, a usage error being 2."""

    exit_code = 1


@cli_main("check-data", exit_code=2, also=(ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read every file of a split through its "
                                                 "data layer and list every bad one.")
    parser.add_argument("dataset", help="voc, nyud, siftflow or pascalcontext")
    parser.add_argument("split", help="split list name, e.g. train or seg11valid")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (like data/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    exp, phase = experiment_for(args.dataset, args.split)
    report = check_split(exp, args.data, args.split, phase, progress=not args.quiet)
    print(report.summary())
    if report.bad:
        raise BadExamples(f"{len(report.bad)} bad example(s) in {args.dataset} {args.split} "
                          f"(listed above); fix or remove them, then check again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
