"""edgevision's desktop converter: a trained convnet in, a verified full-integer int8 TFLite model out.

    from converters import convert
    result = convert("model.onnx", calib="photos/", output="model_int8.tflite", labels="labels.txt")
    print(result.report.to_table())
"""
from .convert import ConversionRefused, ConversionResult, convert
from .ir import ConversionError

__all__ = ["convert", "ConversionError", "ConversionRefused", "ConversionResult"]
