"""lic: learned image compression with real scalar and trellis-coded quantization.

The library holds the domain: models, quantizers, entropy coding, the bitstream
format, data, training and evaluation. ``flows/`` and the CLI only call into it.
"""

import warnings

# CompressAI scripts a few helpers with torch.jit at import time; torch 2.14 warns.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)

__version__ = "0.2.0"
