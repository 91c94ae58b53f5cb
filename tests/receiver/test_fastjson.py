"""receiver.fastjson: orjson where it writes what the standard library would, the library elsewhere."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from receiver import fastjson
from receiver.audit.chain import encode_line

PLAIN: dict[str, Any] = {"b": [1, 2.5, None, True], "a": {"ü": "日本", "x": ""}, "n": -3}


@pytest.mark.parametrize(
    "value",
    [PLAIN, {"big": 2**70, "negative": -(2**63) - 1}, {"surrogate": "\ud800"}, {"nan": math.nan},
     {"inf": [math.inf]}, {"line": "a\u2028b\n\t\"\\"}, [], {}],
    ids=["plain", "int-beyond-64-bits", "lone-surrogate", "nan", "infinity", "escapes", "empty-list",
         "empty-object"],
)
def test_dumps_reads_back_as_the_standard_library_wrote_it(value: Any) -> None:
    text = fastjson.dumps(value)
    expected = json.dumps(value, separators=(",", ":"))
    assert json.loads(text, parse_constant=str) == json.loads(expected, parse_constant=str)
    assert repr(fastjson.loads(text)) == repr(json.loads(expected))  # NaN stays NaN, not None


@pytest.mark.parametrize(
    "rec",
    [{"seq": 1, "prev": "0" * 64, **PLAIN},
     {"seq": 2, "prev": "0" * 64, "endsAt": None, "k": {"z": 1, "a": 2}}],
    ids=["plain", "null-and-nested"],
)
def test_audit_lines_are_canonical(rec: dict[str, Any]) -> None:
    """Sorted keys, no spaces, UTF-8: the bytes the standard library's canonical form has."""
    line, _ = encode_line(rec)
    body = line[:line.rindex(b',"hash":')] + b"}"
    assert body == json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_nan_in_an_audit_record_is_refused_not_written_as_null() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        encode_line({"seq": 1, "prev": "0" * 64, "v": None, "x": [math.nan]})
