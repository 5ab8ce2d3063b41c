"""edgevision: live image recognition on a Raspberry Pi.

The on-device core needs numpy alone; reading images needs Pillow (the ``images`` extra), LiteRT inference the
``litert`` extra.
"""
from .model_info import ModelInfo, read_model_info

__version__ = "0.1.0"
__all__ = ["ModelInfo", "read_model_info", "__version__"]
