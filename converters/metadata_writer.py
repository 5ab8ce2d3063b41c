"""Make a .tflite self-describing: standard TFLite Metadata plus the labels file, packed as TFLite Support does.

The result is what TFLite Support's MetadataPopulator would write for an image classifier:

  * Model.metadata gets an entry "TFLITE_METADATA" pointing at a new Buffer that holds a ModelMetadata
    flatbuffer (file identifier "M001"): name, description, version, author, license; for the input
    tensor ImageProperties (RGB or GRAYSCALE), a NormalizationOptions process unit (mean, std) and
    Stats (the tensor's value range); for the output tensor the labels file "labels.txt"
    (TENSOR_AXIS_LABELS); and a CustomMetadata "edgevision" whose data is UTF-8 JSON with what the
    standard cannot say (channel_order, resize_mode) plus input_size, mean and std at full precision.
  * labels.txt is stored (uncompressed) in a zip archive appended after the model flatbuffer.

edgevision.model_info.read_model_info() reads it back on the device without this module's
dependencies (flatbuffers, numpy).

We add no "min_runtime_version" metadata entry: it is the TF converter's record of the oldest TFLite
runtime that has every op version in the model, which only an op-version table can compute. An entry
already in the model is kept as it is.
"""

from __future__ import annotations

import io
import json
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from converters._schema import metadata_schema_py_generated as meta
from edgevision.model_info import (
    CUSTOM_METADATA_NAME,
    METADATA_ENTRY_NAME,
    METADATA_IDENTIFIER,
    TFLITE_IDENTIFIER,
    ModelInfo,
)

__all__ = ["embed_metadata", "LABELS_FILE_NAME", "MIN_PARSER_VERSION"]

LABELS_FILE_NAME = "labels.txt"
# The oldest metadata parser that understands every field we write: CustomMetadata in SubGraphMetadata
# arrived in metadata schema 1.5.0 (see the history in converters/_schema/metadata_schema.fbs). This is
# what TFLite Support's MetadataPopulator computes for such metadata (checked by the oracle test).
MIN_PARSER_VERSION = "1.5.0"
# TFLite's schema asks for 16-byte aligned Buffer.data (force_align: 16) so kernels may read weights in
# place; the Python object API ignores force_align, so buffers are packed by _AlignedBuffer.
_BUFFER_ALIGNMENT = 16

_TENSOR_TYPE_RANGES = {tfl.TensorType.INT8: (-128.0, 127.0), tfl.TensorType.UINT8: (0.0, 255.0)}


def embed_metadata(model_bytes: bytes, info: ModelInfo) -> bytes:
    """Return a copy of the .tflite `model_bytes` carrying `info` as TFLite Metadata.

    Existing "TFLITE_METADATA" and any previously packed associated files are replaced; other
    metadata entries (e.g. "min_runtime_version") are kept. Raises ValueError when `info` does not
    fit the model (channel count, input size, number of labels) or the model is not a single-input,
    single-output TFLite model.
    """
    if not isinstance(info, ModelInfo):
        raise TypeError(f"embed_metadata() needs a ModelInfo, got {type(info).__name__}")
    model_bytes = bytes(model_bytes)
    if len(model_bytes) < 8 or model_bytes[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(
            f"not a TFLite model: file identifier is {model_bytes[4:8]!r}, expected {TFLITE_IDENTIFIER!r}"
        )
    _check_labels(info.labels)
    model = tfl.ModelT.InitFromPackedBuf(model_bytes, 0)
    if not model.subgraphs:
        raise ValueError("malformed TFLite model: it has no subgraph")
    subgraph = model.subgraphs[0]
    n_in, n_out = len(subgraph.inputs if subgraph.inputs is not None else ()), len(
        subgraph.outputs if subgraph.outputs is not None else ())
    if n_in != 1 or n_out != 1:
        raise ValueError(
            f"embed_metadata() describes single-input, single-output classifiers; this model has "
            f"{n_in} inputs and {n_out} outputs"
        )
    input_tensor = subgraph.tensors[int(subgraph.inputs[0])]
    output_tensor = subgraph.tensors[int(subgraph.outputs[0])]
    input_size, dynamic_size = _check_input(input_tensor, info)
    _check_output(output_tensor, info)

    metadata_buf = _model_metadata(info, input_tensor, input_size, dynamic_size)
    _set_metadata_buffer(model, metadata_buf, model_bytes)

    builder = flatbuffers.Builder(len(model_bytes) + len(metadata_buf) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    out = io.BytesIO()
    out.write(builder.Output())
    if info.labels:
        # Appending a zip to the model is how TFLite Support packs associated files: zipfile in "a"
        # mode on a non-zip file writes the archive after the existing bytes. Stored, not deflated:
        # readers such as MediaPipe's map packed files in place.
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            # A fixed timestamp keeps the file byte-for-byte reproducible from the same inputs.
            entry = zipfile.ZipInfo(LABELS_FILE_NAME, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_STORED
            archive.writestr(entry, "\n".join(info.labels).encode("utf-8") + b"\n")
    return out.getvalue()


def _check_labels(labels: tuple[str, ...]) -> None:
    """Labels must survive the one-per-line file: no line breaks, no edge whitespace, none empty."""
    for i, label in enumerate(labels):
        if not label or label != label.strip() or any(c in label for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
            raise ValueError(
                f"label {i} ({label!r}) cannot be stored one per line: labels must be non-empty, without "
                f"line breaks or leading/trailing whitespace"
            )


def _check_input(tensor, info: ModelInfo) -> tuple[tuple[int, int] | None, bool]:
    """Check `info` against the input tensor; return (input_size, whether H/W are dynamic)."""
    shape = [int(v) for v in (tensor.shape if tensor.shape is not None else ())]
    signature = [int(v) for v in (tensor.shapeSignature if tensor.shapeSignature is not None else shape)]
    if len(shape) != 4:
        raise ValueError(f"the input tensor has shape {shape}; expected an NHWC image [1, height, width, channels]")
    if shape[3] != info.channels:
        raise ValueError(
            f"ModelInfo.channels is {info.channels} but the input tensor has {shape[3]} channels (shape {shape})"
        )
    if info.channels == 1 and info.channel_order != "RGB":
        raise ValueError("a grayscale model (channels=1) has no channel order: leave channel_order as 'RGB'")
    dynamic = len(signature) == 4 and (signature[1] < 0 or signature[2] < 0)
    if dynamic:
        return info.input_size, True
    fixed = (shape[1], shape[2])
    if info.input_size is not None and tuple(info.input_size) != fixed:
        raise ValueError(f"ModelInfo.input_size is {info.input_size} but the input tensor is {fixed} (height, width)")
    return fixed, False


def _check_output(tensor, info: ModelInfo) -> None:
    shape = [int(v) for v in (tensor.shape if tensor.shape is not None else ())]
    if info.labels and shape and shape[-1] > 0 and shape[-1] != len(info.labels):
        raise ValueError(f"{len(info.labels)} labels given but the output tensor has {shape[-1]} classes (shape {shape})")


def _model_metadata(info: ModelInfo, input_tensor, input_size, dynamic_size: bool) -> bytes:
    image = meta.ImagePropertiesT()
    image.colorSpace = meta.ColorSpaceType.RGB if info.channels == 3 else meta.ColorSpaceType.GRAYSCALE
    if dynamic_size and input_size is not None:
        image.defaultSize = meta.ImageSizeT()
        image.defaultSize.height, image.defaultSize.width = input_size
    input_content = meta.ContentT()
    input_content.contentPropertiesType = meta.ContentProperties.ImageProperties
    input_content.contentProperties = image

    normalization = meta.NormalizationOptionsT()
    normalization.mean = list(info.mean)
    normalization.std = list(info.std)
    unit = meta.ProcessUnitT()
    unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    unit.options = normalization

    input_md = meta.TensorMetadataT()
    input_md.name = "image"
    input_md.description = (
        f"{'RGB' if info.channels == 3 else 'grayscale'} image, channels in {info.channel_order} order, "
        f"resized by {info.resize_mode}; value = (pixel - mean) / std"
    )
    input_md.content = input_content
    input_md.processUnits = [unit]
    input_md.stats = _input_stats(input_tensor, info)

    output_md = meta.TensorMetadataT()
    output_md.name = "scores"
    output_md.description = "one score per class"
    output_md.content = meta.ContentT()
    output_md.content.contentPropertiesType = meta.ContentProperties.FeatureProperties
    output_md.content.contentProperties = meta.FeaturePropertiesT()
    if info.labels:
        labels_file = meta.AssociatedFileT()
        labels_file.name = LABELS_FILE_NAME
        labels_file.description = "class names, one per line, in output order"
        labels_file.type = meta.AssociatedFileType.TENSOR_AXIS_LABELS
        output_md.associatedFiles = [labels_file]

    custom = meta.CustomMetadataT()
    custom.name = CUSTOM_METADATA_NAME
    custom.data = list(
        json.dumps(
            {
                "channel_order": info.channel_order,
                "resize_mode": info.resize_mode,
                "input_size": list(input_size) if input_size is not None else None,
                "mean": list(info.mean),
                "std": list(info.std),
            },
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
    )

    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [input_md]
    subgraph.outputTensorMetadata = [output_md]
    subgraph.customMetadata = [custom]

    model_md = meta.ModelMetadataT()
    model_md.name = info.name
    model_md.description = info.description
    model_md.version = info.version
    model_md.author = info.author
    model_md.license = info.license
    model_md.subgraphMetadata = [subgraph]
    model_md.minParserVersion = MIN_PARSER_VERSION

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_md.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _input_stats(tensor, info: ModelInfo):
    """The range of values the input tensor holds, as TFLite Support's image writer records it."""
    stats = meta.StatsT()
    if tensor.type in _TENSOR_TYPE_RANGES:  # quantized input: the integer range itself
        low, high = _TENSOR_TYPE_RANGES[tensor.type]
        stats.min, stats.max = [low], [high]
    else:  # float input: pixels 0..255 after normalisation
        stats.min = [(0.0 - m) / s for m, s in zip(info.mean, info.std)]
        stats.max = [(255.0 - m) / s for m, s in zip(info.mean, info.std)]
    return stats


def _set_metadata_buffer(model, metadata_buf: bytes, model_bytes: bytes) -> None:
    """Point (or re-point) the "TFLITE_METADATA" entry at a buffer holding `metadata_buf`."""
    buffers = [_AlignedBuffer.from_buffer_t(b, i, model_bytes) for i, b in enumerate(model.buffers or [])]
    entries = list(model.metadata or [])
    for entry in entries:
        name = entry.name.decode("utf-8") if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_ENTRY_NAME:
            if not 0 <= entry.buffer < len(buffers):
                raise ValueError(f"malformed TFLite model: metadata {name!r} points to missing buffer {entry.buffer}")
            buffers[entry.buffer] = _AlignedBuffer(metadata_buf)
            break
    else:
        buffers.append(_AlignedBuffer(metadata_buf))
        entry = tfl.MetadataT()
        entry.name = METADATA_ENTRY_NAME
        entry.buffer = len(buffers) - 1
        entries.append(entry)
    model.buffers = buffers
    model.metadata = entries


class _AlignedBuffer:
    """Stands in for tfl.BufferT in ModelT.Pack: writes the bytes inline, 16-byte aligned."""

    def __init__(self, data: bytes | None):
        self.data = data

    @classmethod
    def from_buffer_t(cls, buffer, index: int, model_bytes: bytes) -> "_AlignedBuffer":
        if buffer.offset > 1:  # stored after the flatbuffer (models written for > 2 GB): bring it inline
            if buffer.offset + buffer.size > len(model_bytes):
                raise ValueError(
                    f"malformed TFLite model: buffer {index} ({buffer.size} bytes at offset {buffer.offset}) "
                    f"runs past the end of the {len(model_bytes)}-byte file"
                )
            return cls(model_bytes[buffer.offset : buffer.offset + buffer.size])
        if buffer.data is None:
            return cls(None)
        return cls(np.asarray(buffer.data, dtype=np.uint8).tobytes())

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - the object API's name
        data_offset = None
        if self.data is not None:
            builder.StartVector(1, len(self.data), _BUFFER_ALIGNMENT)
            builder.head -= len(self.data)  # as Builder.CreateNumpyVector does, without a per-byte loop
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            data_offset = builder.EndVector()
        tfl.BufferStart(builder)
        if data_offset is not None:
            tfl.BufferAddData(builder, data_offset)
        return tfl.BufferEnd(builder)
