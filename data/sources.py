"""Where each dataset comes from: the official downloads and where their contents go.

Keyed by the catalog's dataset names; the destinations are the catalog's folders
(core.catalog.FOLDERS), so the layers read what fetching writes.

Checksums are the published ones where a public source gives them (MD5s as distributed
with torchvision and other loaders); where none is known the entry says so, and
`python -m data.fetch` prints the sha256 of what it fetched so it can be pinned here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.catalog import FOLDERS, PASCALCONTEXT_TASK_NAMES, SIFTFLOW_CATEGORY_DIR


@dataclass(frozen=True)
class Download:
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Place:
    """Put the folder of `download`'s archive that holds `markers` at `dest` (relative to
    the data root); with no markers the download is a plain file copied to `dest`."""

    download: Download
    dest: str
    markers: tuple[str, ...] = ()


VOC2011 = Download("http://host.robots.ox.ac.uk/pascal/VOC/voc2011/VOCtrainval_25-May-2011.tar",
                   md5="6c3384ef61512963050cb5d687e5bf1e")
VOC2010 = Download("http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar",
                   md5="da459979d0c395079b5c75ee67908abb")
SBD = Download("http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/"
               "semantic_contours/benchmark.tgz", md5="82b4d87ceb2ed10f6038a1cba92111cb")
CONTEXT_TRAINVAL = Download("https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz",
                            md5="df034edb2c12aa7d33b42b20bb1796e3")
CONTEXT_59_LABELS = Download("https://cs.stanford.edu/~roozbeh/pascal-context/59_labels.txt",
                             md5="993901f2d930cc038c406845f08fa082")
NYUD_RELEASE = Download("http://dl.caffe.berkeleyvision.org/nyud.tar.gz")  # no digest known
NYUD_SPLITS = Download("http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat")
SIFTFLOW = Download("http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/SiftFlowDataset.zip")

NYUD_SPLITS_FILE = "splits.mat"  # under the nyud folder, read by data.splits

# The downloads of each catalog dataset, in fetch order.
SOURCES: dict[str, tuple[Place, ...]] = {
    "voc": (
        Place(VOC2011, FOLDERS["voc2011"],
              ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")),
        Place(SBD, FOLDERS["sbdd"], ("img", "cls", "train.txt")),
    ),
    "pascalcontext": (
        Place(VOC2010, FOLDERS["voc2010"], ("JPEGImages", "ImageSets/Main")),
        Place(CONTEXT_TRAINVAL, FOLDERS["pascalcontext"], ("trainval",)),
        Place(CONTEXT_59_LABELS, f"{FOLDERS['pascalcontext']}/{PASCALCONTEXT_TASK_NAMES}"),
    ),
    "nyud": (
        Place(NYUD_RELEASE, FOLDERS["nyud"], ("data/images", "segmentation")),
        Place(NYUD_SPLITS, f"{FOLDERS['nyud']}/{NYUD_SPLITS_FILE}"),
    ),
    "siftflow": (
        Place(SIFTFLOW, FOLDERS["siftflow"], (f"Images/{SIFTFLOW_CATEGORY_DIR}",
                                              "SemanticLabels", "GeoLabels")),
    ),
}
