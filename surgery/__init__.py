"""Weight surgery: classifier → FCN, bilinear upsampling, staged and fusion inits."""

from surgery.interp import interp, upsample_filt
from surgery.transplant import Report, SurgeryError, expand_score, transplant

__all__ = ["Report", "SurgeryError", "expand_score", "interp", "transplant", "upsample_filt"]
