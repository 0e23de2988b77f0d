"""Weight surgery: classifier → FCN, bilinear upsampling, staged and fusion inits.

transplant / expand_score move weights by layer name; interp / upsample_filt set bilinear
Deconvolution kernels; surgery.convert makes FCN base weights from a classifier;
surgery.prepare an experiment's starting weights; surgery.fetch downloads the classifiers.
"""

from surgery.errors import SurgeryError
from surgery.interp import interp, upsample_filt
from surgery.transplant import Report, expand_score, transplant

__all__ = ["Report", "SurgeryError", "expand_score", "interp", "transplant", "upsample_filt"]
