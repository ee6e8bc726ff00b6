"""The tolerant decoder: one regression test per kind of firmware breakage."""

from __future__ import annotations

import pytest

from fleetd.transport.errors import MalformedReplyError
from fleetd.transport.jsonfix import loads_tolerant


def test_valid_json_fast_path() -> None:
    assert loads_tolerant(b'{"STATUS":[{"STATUS":"S"}],"id":1}') == {"STATUS": [{"STATUS": "S"}], "id": 1}
    assert loads_tolerant('{"a": 1}') == {"a": 1}


def test_trailing_nul() -> None:
    assert loads_tolerant(b'{"a":1}\x00') == {"a": 1}
    assert loads_tolerant(b'{"a":1}\x00\x00') == {"a": 1}


def test_nul_inside_text() -> None:
    assert loads_tolerant(b'{"a":1}\x00\n') == {"a": 1}


def test_objects_run_together_in_array() -> None:
    # bmminer's stats: the second STATS element follows the first without a comma.
    raw = b'{"STATS":[{"BMMiner":"1.0.0"}{"STATS":0,"ID":"BC50"}],"id":1}'
    assert loads_tolerant(raw)["STATS"] == [{"BMMiner": "1.0.0"}, {"STATS": 0, "ID": "BC50"}]


def test_objects_run_together_with_whitespace() -> None:
    assert loads_tolerant(b'[{"a":1}\n  {"b":2}]') == [{"a": 1}, {"b": 2}]


def test_top_level_values_run_together_become_a_list() -> None:
    assert loads_tolerant(b'{"a":1}{"b":2}') == [{"a": 1}, {"b": 2}]


def test_comma_before_closing_brace() -> None:
    assert loads_tolerant(b'{"a":1,"b":2,}') == {"a": 1, "b": 2}


def test_comma_before_closing_bracket() -> None:
    assert loads_tolerant(b'{"a":[1,2,]}') == {"a": [1, 2]}


def test_comma_after_opening_bracket() -> None:
    assert loads_tolerant(b'{"DEVS":[,{"ASC":0}]}') == {"DEVS": [{"ASC": 0}]}


def test_doubled_comma() -> None:
    assert loads_tolerant(b'{"a":1,,"b":2}') == {"a": 1, "b": 2}


def test_bare_inf_and_nan_become_none() -> None:
    raw = b'{"MHS av":inf,"x":-inf,"y":nan,"z":-nan,"w":1.5}'
    assert loads_tolerant(raw) == {"MHS av": None, "x": None, "y": None, "z": None, "w": 1.5}


def test_json_non_finite_constants_become_none() -> None:
    # Python's json accepts these; they must not reach the model as floats.
    assert loads_tolerant(b'{"a":NaN,"b":Infinity,"c":-Infinity}') == {"a": None, "b": None, "c": None}


def test_inf_inside_strings_untouched() -> None:
    assert loads_tolerant(b'{"a":"inf","b":"nan",}') == {"a": "inf", "b": "nan"}


def test_stray_newline_inside_string() -> None:
    assert loads_tolerant(b'{"Msg":"line one\nline two\r","t":"a\tb"}') == {
        "Msg": "line one\nline two\r",
        "t": "a\tb",
    }


def test_control_characters_inside_string() -> None:
    assert loads_tolerant(b'{"Type":"Antminer\x01S9"}') == {"Type": "Antminer\x01S9"}


def test_percent_keys_kept() -> None:
    raw = b'{"POOLS":[{"Pool Stale%%":0.0,"Pool Rejected%":0.1}],}'
    assert loads_tolerant(raw) == {"POOLS": [{"Pool Stale%%": 0.0, "Pool Rejected%": 0.1}]}


def test_structural_characters_inside_strings_untouched() -> None:
    raw = b'{"a":"},{","b":"[,{","c":",}",}'
    assert loads_tolerant(raw) == {"a": "},{", "b": "[,{", "c": ",}"}


def test_invalid_escape_kept_literally() -> None:
    assert loads_tolerant(b'{"path":"C:\\miner\\x.conf"}') == {"path": "C:\\miner\\x.conf"}


def test_valid_escapes_kept() -> None:
    assert loads_tolerant(b'{"a":"q\\"t\\u00e9\\n",}') == {"a": 'q"t\u00e9\n'}


def test_latin1_bytes_kept() -> None:
    assert loads_tolerant('{"Description":"caf\xe9"}'.encode("latin-1")) == {"Description": "caf\xe9"}


def test_several_breakages_at_once() -> None:
    raw = b'{"STATS":[,{"a":inf,}{"b":"x\ny"},],"id":1}\x00'
    assert loads_tolerant(raw) == {"STATS": [{"a": None}, {"b": "x\ny"}], "id": 1}


@pytest.mark.parametrize("raw", [b"", b"\x00", b'{"a":', b'{"a":1', b"garbage", b'{"a":1} trailing'])
def test_hopeless_input_is_malformed_with_host_and_command(raw: bytes) -> None:
    with pytest.raises(MalformedReplyError) as err:
        loads_tolerant(raw, host="10.0.0.1", command="stats")
    assert err.value.host == "10.0.0.1" and err.value.command == "stats"
    assert str(err.value).startswith("10.0.0.1 (stats): undecodable reply")
