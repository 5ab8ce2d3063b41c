"""Model importers: each reads one format into a converters.ir.Graph (NHWC, float)."""
