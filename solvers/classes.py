"""Class names for the per-class score tables, in label order (index = class id as the
data layers emit it: 0-based, void 255).

Facts from the release's class lists: VOC's 20 classes after background; NYUDv2's 40
(the layer shifts 1..40 to 0..39); SIFT Flow's 33 semantic classes (1..33 shifted to
0..32) and 3 geometric ones; PASCAL-Context's 59 after background, the first 20 being
VOC's.
"""

from __future__ import annotations

VOC = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

NYUD = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window",
    "bookshelf", "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser",
    "pillow", "mirror", "floor mat", "clothes", "ceiling", "books", "refridgerator",
    "television", "paper", "towel", "shower curtain", "box", "whiteboard", "person",
    "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure",
    "otherfurniture", "otherprop",
)

SIFTFLOW_SEMANTIC = (
    "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow",
    "crosswalk", "desert", "door", "fence", "field", "grass", "moon", "mountain", "person",
    "plant", "pole", "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky",
    "staircase", "streetlight", "sun", "tree", "window",
)

SIFTFLOW_GEOMETRIC = ("sky", "horizontal", "vertical")

PASCALCONTEXT = VOC + (
    "bag", "bed", "bench", "book", "building", "cabinet", "ceiling", "clothes", "computer",
    "cup", "door", "fence", "floor", "flower", "food", "grass", "ground", "keyboard", "light",
    "mountain", "mouse", "curtain", "platform", "sign", "plate", "road", "rock", "shelves",
    "sidewalk", "sky", "snow", "bedcloth", "track", "tree", "truck", "wall", "water",
    "window", "wood",
)

# (dataset, label top) -> names; SIFT Flow's two heads are scored separately
NAMES = {
    ("voc", "label"): VOC,
    ("nyud", "label"): NYUD,
    ("siftflow", "sem"): SIFTFLOW_SEMANTIC,
    ("siftflow", "geo"): SIFTFLOW_GEOMETRIC,
    ("pascalcontext", "label"): PASCALCONTEXT,
}


def class_names(dataset: str, label_blob: str, num_classes: int) -> list[str]:
    """The names for a head's classes; plain numbers when the dataset's list does not
    match the head (a synthetic dataset with fewer classes, an unknown dataset)."""
    names = NAMES.get((dataset, label_blob))
    if names is None or len(names) != num_classes:
        return [str(i) for i in range(num_classes)]
    return list(names)
