"""edgevision run --config FILE: TOML with the run flags' keys, checked in one place; flags override it."""
from __future__ import annotations

import pytest

from edgevision.config import RUN_KEYS, ConfigError, load_config, merge


def _write(tmp_path, text):
    p = tmp_path / "edgevision.toml"
    p.write_text(text)
    return p


def test_every_run_setting_can_be_read_from_the_file(tmp_path):
    p = _write(tmp_path, 'model = "m.tflite"\nsource = "demo"\nbackend = "litert"\nthreads = 2\nkernels = "ref"\n'
                         'jsonl = "-"\nweb = "127.0.0.1:8080"\nweb_token = "t"\nframes = 5\nfps = 15\n'
                         'size = "640x480"\nloop = true\ntop_k = 3\nthreshold = 0.4\nsmoothing = 0\n'
                         'hysteresis = 0.05\nquiet = true\nlog_level = "info"\n')
    cfg = load_config(p)
    assert set(cfg) == set(RUN_KEYS)
    assert cfg["threads"] == 2 and cfg["kernels"] == "ref" and cfg["fps"] == 15.0 and isinstance(cfg["fps"], float)
    assert cfg["smoothing"] == 0.0 and cfg["loop"] is True


def test_unknown_key_is_named_with_the_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, 'modle = "x.tflite"\n'))
    msg = str(e.value)
    assert "'modle'" in msg and "valid keys: model, source, backend" in msg


def test_dashed_key_suggests_the_underscore_spelling(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'web_token'"):
        load_config(_write(tmp_path, 'web-token = "x"\n'))


@pytest.mark.parametrize("line, expected", [('threads = "4"', "threads = '4' (str); expected an integer"),
                                            ("threads = true", "threads = True (bool); expected an integer"),
                                            ("frames = 2.5", "frames = 2.5 (float); expected an integer"),
                                            ('threshold = "high"', "expected a number from 0 to 1"),
                                            ("quiet = 1", "quiet = 1 (int); expected true or false"),
                                            ("model = 3", "model = 3 (int); expected a string")])
def test_wrong_type_names_key_value_and_expected_type(tmp_path, line, expected):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, line + "\n"))
    assert expected in str(e.value)


def test_tables_bad_toml_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[run\] tables are not used"):
        load_config(_write(tmp_path, "[run]\nthreads = 2\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "threads = = 2\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_flags_override_the_file_and_the_file_overrides_defaults():
    cfg = merge({"threads": None, "fps": None, "top_k": 5}, {"threads": 2, "fps": 5.0},
                {"threads": 4, "fps": None, "top_k": None})
    assert cfg == {"threads": 4, "fps": 5.0, "top_k": 5}


def test_missing_toml_reader_names_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **kw):
        if name in ("tomllib", "tomli"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    from edgevision.config import _toml
    with pytest.raises(ConfigError, match="pip install tomli"):
        _toml()
