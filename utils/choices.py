"""Values of the options that both the command line and the library check, in a module without torch (so that
``--help`` and argument errors answer before torch is imported)."""
from __future__ import annotations

PRECISIONS = ("fp32", "bf16", "fp16")  # inference: ``load_model(..., precision=...)``, ``-precision``
AMP_MODES = ("none", "bf16", "fp16")  # training: ``Training.amp``
I3D_KINDS = ("hassony2", "torchscript")  # the Kinetics I3D of FVD / I3D diversity: ``-i3d``
