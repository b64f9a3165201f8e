"""The raw zone's encoding: JSON lines that survive any string the API may send."""

from __future__ import annotations

from pathlib import Path

from bankconnect_etl import raw

RECORDS = [
    {"entity_id": "e1", "responses": {"transactions": [{"description": "line\nbreak\r\n"}]}},
    {"entity_id": "e2", "note": 'U+2028 \u2028 and U+2029 \u2029, ₹ 1,00,000, "quoted"'},
    {"entity_id": "e3", "nested": [[], {}, None, 1.5, -0, 10**18, True]},
]


def test_encoded_records_decode_to_the_same_records() -> None:
    lines = raw.encode(RECORDS)
    assert lines.count(b"\n") == len(RECORDS)  # one line per record, whatever its strings
    assert list(raw.decode(lines)) == RECORDS
    assert list(raw.decode(b"")) == []


def test_a_part_is_written_whole_and_reads_back(tmp_path: Path) -> None:
    writer = raw.RawWriter(tmp_path, "run-1")
    first = writer.write(RECORDS[:1])
    second = writer.reserve()
    raw.write_part(second, raw.encode(RECORDS[1:]))
    assert [p.name for p in raw.parts(writer.folder)] == [first.name, second.name]
    assert list(raw.read_part(first)) == RECORDS[:1]
    assert list(raw.read_part(second)) == RECORDS[1:]
    assert not list(writer.folder.glob("*.tmp"))
