"""Small segmentation datasets written in each real on-disk layout, for tests and the demo.

The pictures are made to exercise what FCN is about: a textured background, blobs of
several classes and thin bars (2–3 px) that a stride-32 prediction cannot draw but a
stride-8 one can, with void (255) outlines like VOC's. Files are real JPEG/PNG/.mat in the
folders the data layers read; the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

# one hue per class (RGB), class 0 is background
PALETTE_RGB = np.array([
    [0, 0, 0], [220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 210, 40], [200, 60, 210],
    [40, 200, 210], [240, 140, 30], [120, 60, 20], [150, 150, 150], [20, 100, 60]],
    dtype=np.float64)


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved), 256 entries, flat RGB."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def draw_example(rng: np.random.RandomState, size: tuple[int, int], num_classes: int,
                 void_outline: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One picture (H×W×3 uint8) and its label (H×W uint8, 255 void)."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    background = 90 + 30 * np.sin(xx / rng.uniform(3, 8)) * np.cos(yy / rng.uniform(3, 8))
    image = np.repeat(background[..., None], 3, axis=2) + rng.normal(0, 12, (h, w, 3))
    label = np.zeros((h, w), np.uint8)
    for _ in range(rng.randint(2, 5)):
        cls = rng.randint(1, num_classes)
        if rng.rand() < 0.5:  # a blob
            cy, cx = rng.randint(0, h), rng.randint(0, w)
            ry, rx = rng.uniform(0.08, 0.25) * h, rng.uniform(0.08, 0.25) * w
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        else:  # a thin bar, 2–3 px wide, horizontal, vertical or diagonal
            width = rng.randint(2, 4)
            angle = rng.choice([0, np.pi / 2, np.pi / 4, -np.pi / 4])
            offset = rng.uniform(0.2, 0.8) * (h if angle else w)
            distance = np.abs((xx - w / 2) * np.sin(angle) - (yy - h / 2) * np.cos(angle)
                              + (offset - (h if angle else w) / 2))
            mask = distance < width / 2
        color = PALETTE_RGB[cls % len(PALETTE_RGB)]
        image[mask] = color + rng.normal(0, 10, (mask.sum(), 3))
        label[mask] = cls
    if void_outline:  # VOC marks object boundaries void
        edges = np.zeros_like(label, bool)
        edges[:-1] |= label[:-1] != label[1:]
        edges[:, :-1] |= label[:, :-1] != label[:, 1:]
        label[edges & (label > 0)] = 255
    return np.clip(image, 0, 255).astype(np.uint8), label


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)


def _write_palette_png(path: Path, label: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    png = Image.fromarray(label, mode="P")
    png.putpalette(voc_palette())
    png.save(path)


def _write_list(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(n + "\n" for n in names))


def make_dataset(dataset: str, root: Path | str, *, n_train: int, n_val: int,
                 size: tuple[int, int] = (64, 64), num_classes: int | None = None,
                 seed: int = 0) -> Path:
    """Write a synthetic `dataset` ('voc', 'nyud', 'siftflow', 'pascalcontext') under the
    data root `root`, laid out like the release's data folder; returns root."""
    root = Path(root)
    rng = np.random.RandomState(seed)
    classes = num_classes or {"voc": 21, "nyud": 40, "siftflow": 33, "pascalcontext": 60}[dataset]
    drawable = min(classes, len(PALETTE_RGB))
    examples = [draw_example(rng, size, drawable) for _ in range(n_train + n_val)]
    train_ids = [f"2000_{i:06d}" for i in range(n_train)]
    val_ids = [f"2001_{i:06d}" for i in range(n_val)]
    ids = train_ids + val_ids

    if dataset == "voc":
        sbdd, voc = root / "sbdd/dataset", root / "pascal/VOC2011"
        for name, (image, label) in zip(ids, examples):
            if name in train_ids:
                _write_jpeg(sbdd / f"img/{name}.jpg", image)
                _write_mat(sbdd / f"cls/{name}.mat", {"GTcls": {
                    "Segmentation": label, "Boundaries": np.zeros((0, 0)),
                    "CategoriesPresent": np.unique(label[label < 255]).astype(np.uint8)}})
            else:
                _write_jpeg(voc / f"JPEGImages/{name}.jpg", image)
                _write_palette_png(voc / f"SegmentationClass/{name}.png", label)
        _write_list(sbdd / "train.txt", train_ids)
        _write_list(sbdd / "val.txt", val_ids)
        for split in ("val", "seg11valid"):
            _write_list(voc / f"ImageSets/Segmentation/{split}.txt", val_ids)
    elif dataset == "nyud":
        nyud = root / "nyud"
        for k, (image, label) in enumerate(examples):
            name = f"{k + 1:04d}"
            _write_png(nyud / f"data/images/img_{name}.png", image)
            depth = (1000 + 20 * image[..., 0].astype(np.uint16)).astype(np.uint16)
            _write_png(nyud / f"data/depth/img_{name}.png", depth)
            _write_png(nyud / f"data/hha/img_{name}.png", image[..., ::-1].copy())
            nyud_label = np.where(label == 255, 0, label.astype(np.int64) + 1)  # 0 void
            _write_mat(nyud / f"segmentation/img_{name}.mat",
                    {"segmentation": nyud_label.astype(np.uint8)})
        names = [f"{k + 1:04d}" for k in range(len(examples))]
        _write_list(nyud / "trainval.txt", names[:n_train])
        _write_list(nyud / "test.txt", names[n_train:])
    elif dataset == "siftflow":
        _write_siftflow(root / "sift-flow", ids, train_ids, examples)
    elif dataset == "pascalcontext":
        voc, context = root / "pascal/VOC2010", root / "pascal-context"
        labels_459 = [f"thing{i}" for i in range(1, 460)]
        task_59 = labels_459[:59]
        for name, (image, label) in zip(ids, examples):
            _write_jpeg(voc / f"JPEGImages/{name}.jpg", image)
            label_map = np.where(label == 255, 0, label).astype(np.int64)  # k: entry k
            _write_mat(context / f"trainval/{name}.mat", {"LabelMap": label_map.astype(np.uint16)})
        (context / "labels.txt").write_text(
            "".join(f"{i}: {n}\n" for i, n in enumerate(labels_459, start=1)))
        (context / "59_labels.txt").write_text(
            "".join(f"{i}: {n}\n" for i, n in enumerate(task_59, start=1)))
        _write_list(voc / "ImageSets/Main/train.txt", train_ids)
        _write_list(voc / "ImageSets/Main/val.txt", val_ids)
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    return root


def _write_mat(path: Path, variables: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), variables)


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


SIFTFLOW_FOLDER = "spatial_envelope_256x256_static_8outdoorcategories"


def _write_siftflow(root: Path, ids, train_ids, examples) -> None:
    for name, (image, label) in zip(ids, examples):
        _write_jpeg(root / f"Images/{SIFTFLOW_FOLDER}/{name}.jpg", image)
        label = label.astype(np.int16)
        sem = np.where(label == 255, 0, label + 1)  # 0 unlabelled
        geo = np.where(label == 0, 1, np.where(label == 255, -1, 2 + label % 2))  # -1 void
        for kind, values in (("SemanticLabels", sem), ("GeoLabels", geo)):
            _write_mat(root / f"{kind}/{SIFTFLOW_FOLDER}/{name}.mat",
                       {"S": values.astype(np.int16)})
    _write_list(root / "trainval.txt", train_ids)
    _write_list(root / "test.txt", [i for i in ids if i not in train_ids])


def make_classification(root: Path | str, n: int, *, size: int = 224, num_classes: int = 10,
                        seed: int = 0) -> tuple[list[Path], list[int]]:
    """Images of the same kind with one dominant class each (the demo's miniature
    ImageNet): the label is the class covering most of the picture's foreground."""
    root = Path(root)
    rng = np.random.RandomState(seed)
    paths, labels = [], []
    for k in range(n):
        image, label = draw_example(rng, (size, size), num_classes, void_outline=False)
        counts = np.bincount(label[label > 0], minlength=num_classes)
        labels.append(int(counts.argmax()) if counts.any() else 0)
        paths.append(root / f"{k:05d}.jpg")
        _write_jpeg(paths[-1], image)
    _write_list(root / "labels.txt", [f"{p.name} {c}" for p, c in zip(paths, labels)])
    return paths, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic dataset in a real layout.")
    parser.add_argument("dataset", choices=["voc", "nyud", "siftflow", "pascalcontext"])
    parser.add_argument("root", type=Path, help="data root (like the release's data/)")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--val", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_dataset(args.dataset, args.root, n_train=args.train, n_val=args.val,
                 size=tuple(args.size), seed=args.seed)
    print(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
