"""Pack one split into an LMDB the data layers can read instead of the folders.

Each file an example reads (and the split list, and any class lists) is stored whole,
its bytes untouched, under "<root name>/<relative path>", so the layer decodes exactly
what it would from disk: same tops, byte for byte. Meant for slow or network disks,
where one large file reads faster than thousands of small ones. Use it by adding
'lmdb': '<path>' to the layer's param_str.

    python -m data.lmdb_pack voc seg11valid --root datasets
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.defaults import DATA_ROOT
from core.errors import cli_main
from data.registry import NAMES, dataset_for, from_layers, layer_params

MAP_SLACK = 1.25  # LMDB needs its maximum size up front


def split_files(name: str, params: dict) -> tuple[object, list, list[str]]:
    """(source, every file reference the split reads, the split's example ids)."""
    dataset = dataset_for(name, params)
    source = from_layers("seg_io").FileSource(dataset.roots())
    indices = from_layers("seg_dataset").read_split(dataset, source)
    refs = [dataset.split_file(), *dataset.setup_files()]
    for index in indices:
        refs += dataset.files(index).values()
    return source, list(dict.fromkeys(refs)), indices


def pack(name: str, root: Path, split: str, out: Path, *, check: bool = True,
         progress: bool = True) -> Path:
    """Write the LMDB for split `split` of dataset `name` under data root `root`."""
    # lmdb only for packing
    import lmdb
    from tqdm import tqdm

    load_example = from_layers("seg_dataset").load_example
    lmdb_key = from_layers("seg_io").lmdb_key

    params = layer_params(name, root, split)
    source, refs, indices = split_files(name, params)
    if check:  # refuse to pack what the layer would refuse to read
        dataset = dataset_for(name, params)
        dataset.prepare(source)
        for index in tqdm(indices, desc=f"check {name}/{split}", unit="img",
                          disable=not progress, leave=False):
            load_example(dataset, source, index)
    total = sum(source.path(ref).stat().st_size for ref in refs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(out), map_size=int(total * MAP_SLACK) + (64 << 20), subdir=True)
    with env.begin(write=True) as txn:
        for ref in tqdm(refs, desc=f"pack {name}/{split}", unit="file", disable=not progress):
            txn.put(lmdb_key(ref), source.read(ref))
    env.sync()
    env.close()
    return out


@cli_main("lmdb-pack")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(NAMES))
    parser.add_argument("split", help="e.g. seg11valid, train, trainval, test, val")
    parser.add_argument("--root", type=Path, default=DATA_ROOT, help="data root")
    parser.add_argument("--out", type=Path, help="LMDB folder (<root>/lmdb/<dataset>-<split>)")
    parser.add_argument("--no-check", action="store_true", help="skip decoding every example")
    args = parser.parse_args(argv)
    out = args.out or args.root / "lmdb" / f"{args.dataset}-{args.split}"

    pack(args.dataset, args.root, args.split, out, check=not args.no_check)
    print(f"{out} (add 'lmdb': '{out}' to the layer's param_str)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
