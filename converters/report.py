"""Float versus int8: accuracy, agreement and per-layer signal-to-quantization-noise ratio.

The int8 side runs the written file in LiteRT: accuracy with its default kernels (XNNPACK, what a user of LiteRT
gets), per-layer SQNR with its builtin kernels and no delegate (so that every intermediate tensor can be read
back). The float side runs the graph the file was made from.
SQNR of a layer = 10·log10(Σ float² / Σ (float − dequantized int8)²) over the first images of the set.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Callable, Iterable

import numpy as np

from edgevision.preprocess import quantize as quantize_input

from .float_exec import FloatExecutor
from .ir import ConversionError, Graph

SQNR_IMAGES = 16


@dataclasses.dataclass
class LayerSQNR:
    tensor: str
    op: str
    node: str
    sqnr_db: float


@dataclasses.dataclass
class Report:
    model: str
    calibration_method: str
    calibration_images: int
    eval_images: int
    eval_source: str  # "labelled folder" | "unlabelled folder" | "calibration images" | "arrays"
    labelled: bool
    float_top1: float | None
    int8_top1: float | None
    float_top5: float | None
    int8_top5: float | None
    agreement_top1: float  # % of images where float and int8 agree on the top class
    drop_points: float  # top-1 drop when labelled, else 100 − agreement
    max_drop: float
    output_sqnr_db: float
    layers: list[LayerSQNR]
    passed: bool = True
    written: str | None = None
    skipped_images: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def worst_layers(self) -> list[LayerSQNR]:
        return sorted(self.layers, key=lambda l: l.sqnr_db)[:5]

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["worst_layers"] = [dataclasses.asdict(l) for l in self.worst_layers]
        return json.dumps(d, indent=2, default=float)

    def to_table(self) -> str:
        def pct(v):
            return "   n/a" if v is None else f"{v:6.2f}"
        lines = [
            f"model        {self.model}",
            f"calibration  {self.calibration_images} images, method {self.calibration_method}",
            f"evaluation   {self.eval_images} images ({self.eval_source})",
            "",
            "               float    int8   change   (int8: LiteRT default kernels)",
        ]
        if self.labelled:
            lines.append(f"  top-1 %    {pct(self.float_top1)}  {pct(self.int8_top1)}  "
                         f"{self.int8_top1 - self.float_top1:+7.2f}")
            if self.float_top5 is not None:
                lines.append(f"  top-5 %    {pct(self.float_top5)}  {pct(self.int8_top5)}  "
                             f"{self.int8_top5 - self.float_top5:+7.2f}")
        lines += [
            f"  top-1 agreement float vs int8: {self.agreement_top1:.2f} %",
            f"  output SQNR: {self.output_sqnr_db:.1f} dB",
            "",
            "  worst layers (SQNR dB, lower is worse):",
        ]
        for l in self.worst_layers:
            lines.append(f"    {l.sqnr_db:6.1f}  {l.op:<17} {l.node}")
        verdict = (f"PASS: drop {self.drop_points:.2f} points <= max {self.max_drop:.2f}" if self.passed
                   else f"FAIL: drop {self.drop_points:.2f} points > max {self.max_drop:.2f}")
        lines += ["", verdict + (" (top-1)" if self.labelled else " (100 - agreement; no labels)")]
        if self.skipped_images:
            lines.append(f"note: {self.skipped_images} unreadable image(s) skipped")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def make_interpreter(model: bytes, *, preserve: bool = True, reference: bool = False, default_kernels: bool = False,
                     threads: int | None = None):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:  # pragma: no cover
        raise ConversionError("checking the int8 model needs 'ai-edge-litert': pip install 'edgevision[convert]'"
                              ) from e
    if reference:
        kind = OpResolverType.BUILTIN_REF
    elif default_kernels:
        kind = OpResolverType.AUTO
    else:
        kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind,
                     experimental_preserve_all_tensors=preserve, num_threads=threads)
    it.allocate_tensors()
    return it


def evaluate(graph: Graph, model: bytes, tensor_index: dict[str, int], inputs: np.ndarray,
             targets: np.ndarray | None, *, progress: Callable[[Iterable, int, str], Iterable] | None = None,
             batch: int = 16) -> dict:
    """Top-1/top-5 for both models, agreement and per-layer SQNR."""
    ex = FloatExecutor(graph)
    it = make_interpreter(model)  # builtin kernels, every tensor kept: for per-layer SQNR
    fast = make_interpreter(model, preserve=False, default_kernels=True)  # for accuracy
    inp_d = it.get_input_details()[0]
    out_d = it.get_output_details()[0]
    in_scale, in_zp = inp_d["quantization"]
    in_dtype = inp_d["dtype"]
    out_scale, out_zp = out_d["quantization"]
    out_name = graph.outputs[0]
    watch = [n for n in tensor_index if not graph.tensors[n].is_const and n not in graph.inputs]
    num = {n: 0.0 for n in watch}
    den = {n: 0.0 for n in watch}
    f_logits, q_logits = [], []
    wrap = progress or (lambda it_, total, desc: it_)
    steps = (len(inputs) + batch - 1) // batch
    seen = 0
    for start in wrap(range(0, len(inputs), batch), steps, "evaluating"):
        x = inputs[start:start + batch]
        want_layers = seen < SQNR_IMAGES
        facts = ex.run({graph.inputs[0]: x}, keep=set(watch) if want_layers else False)
        f_logits.append(facts[out_name].reshape(len(x), -1))
        for k in range(len(x)):
            qx = quantize_input(x[k:k + 1], in_scale, in_zp, in_dtype)
            fast.set_tensor(inp_d["index"], qx)
            fast.invoke()
            q = fast.get_tensor(out_d["index"])
            q_logits.append(((q.astype(np.float32) - out_zp) * out_scale if out_scale else q).reshape(-1))
            if seen < SQNR_IMAGES:
                it.set_tensor(inp_d["index"], qx)
                it.invoke()
                for n in watch:
                    t = graph.tensors[n]
                    qv = it.get_tensor(tensor_index[n]).astype(np.float64)
                    deq = (qv - float(t.quant.zero_point[0])) * float(t.quant.scale[0])
                    fv = facts[n][k].reshape(deq.shape).astype(np.float64)
                    num[n] += float((fv ** 2).sum())
                    den[n] += float(((fv - deq) ** 2).sum())
                seen += 1
    f = np.concatenate(f_logits)
    q = np.stack(q_logits)
    layers = {n: _db(num[n], den[n]) for n in watch}
    res = {"agreement": float((f.argmax(1) == q.argmax(1)).mean() * 100), "layers": layers,
           "output_sqnr": layers.get(out_name, _db(float((f ** 2).sum()), float(((f - q) ** 2).sum()))),
           "float_pred": f.argmax(1), "int8_pred": q.argmax(1)}
    if targets is not None:
        k = min(5, f.shape[1])
        res["float_top1"] = float((f.argmax(1) == targets).mean() * 100)
        res["int8_top1"] = float((q.argmax(1) == targets).mean() * 100)
        if f.shape[1] >= 5:
            res["float_top5"] = float((np.argsort(-f, 1)[:, :k] == targets[:, None]).any(1).mean() * 100)
            res["int8_top5"] = float((np.argsort(-q, 1, kind="stable")[:, :k] == targets[:, None]).any(1).mean() * 100)
    return res


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return math.inf if signal > 0 else 0.0
    if signal <= 0:
        return -math.inf
    return 10 * math.log10(signal / noise)
