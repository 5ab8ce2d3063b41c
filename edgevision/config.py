"""``edgevision run --config FILE``: a TOML file with the same settings as the ``run`` flags.

    # edgevision.toml
    model = "/home/pi/models/birds_int8.tflite"
    source = "picamera2"
    threads = 4
    jsonl = "/var/log/edgevision/results.jsonl"
    web = "0.0.0.0:8080"
    web_token = "paste-the-output-of-secrets.token_urlsafe(24)"
    threshold = 0.4

Keys are the flag names with ``_`` for ``-``; flags given on the command line override the file. The file is
checked in one place, here: an unknown key or a value of the wrong type is an error that names it.
Reading TOML needs Python 3.11+ (``tomllib``) or, on 3.9/3.10, ``pip install tomli``.
"""
from __future__ import annotations

import os
from typing import Any, Dict

# key → (accepted types, what to write in an error, help)
RUN_KEYS: Dict[str, tuple] = {
    "model": ((str,), "a string (path to a .tflite file)"),
    "source": ((str,), "a string (demo, picamera2, /dev/video0, a file, a folder, rtsp://...)"),
    "backend": ((str,), 'a string: "auto", "litert" or "native"'),
    "threads": ((int,), "an integer"),
    "kernels": ((str,), 'a string: "auto", "ref", "sse41", "avx2", "avx512vnni", "neon" or "dotprod" '
                           '(native backend)'),
    "jsonl": ((str,), 'a string (file path, or "-" for stdout)'),
    "web": ((str,), 'a string "HOST:PORT"'),
    "web_token": ((str,), "a string"),
    "frames": ((int,), "an integer"),
    "fps": ((int, float), "a number"),
    "size": ((str,), 'a string "WIDTHxHEIGHT"'),
    "loop": ((bool,), "true or false"),
    "top_k": ((int,), "an integer"),
    "threshold": ((int, float), "a number from 0 to 1"),
    "smoothing": ((int, float), "a number from 0 to below 1"),
    "hysteresis": ((int, float), "a number from 0 to 1"),
    "quiet": ((bool,), "true or false"),
    "log_level": ((str,), 'a string: "debug", "info", "warning" or "error"'),
}


class ConfigError(ValueError):
    """The config file is unreadable or holds a bad key or value; the message says which and what is valid."""


def _toml():
    try:
        import tomllib  # Python 3.11+
        return tomllib
    except ImportError:
        pass
    try:
        import tomli  # type: ignore[import-not-found]
        return tomli
    except ImportError:
        raise ConfigError("reading a TOML config file needs Python 3.11+ or the tomli package: "
                          "pip install tomli") from None


def validate(values: Dict[str, Any], where: str = "config") -> Dict[str, Any]:
    """Check keys and value types; return a new dict with numbers as float where a float is expected."""
    out: Dict[str, Any] = {}
    for key, value in values.items():
        if key not in RUN_KEYS:
            hint = f" (did you mean {key.replace('-', '_')!r}?)" if key.replace("-", "_") in RUN_KEYS else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(RUN_KEYS)}")
        types, expected = RUN_KEYS[key]
        # bool is an int in Python; `threads = true` is still a mistake
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            raise ConfigError(f"{where}: {key} = {value!r} ({type(value).__name__}); expected {expected}")
        if float in types and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


def load_config(path: str | os.PathLike) -> Dict[str, Any]:
    """Read and check a TOML config file; the keys are those of :data:`RUN_KEYS`."""
    toml = _toml()
    try:
        with open(path, "rb") as fh:
            data = toml.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except toml.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: [{key}] tables are not used; put the keys at the top level. "
                              f"Valid keys: {', '.join(RUN_KEYS)}")
    return validate(data, where=str(path))


def merge(defaults: Dict[str, Any], file_values: Dict[str, Any], flags: Dict[str, Any]) -> Dict[str, Any]:
    """defaults < config file < flags given on the command line (a flag left out is ``None`` and does not
    override)."""
    out = dict(defaults)
    out.update(file_values)
    out.update({k: v for k, v in flags.items() if v is not None})
    return out
