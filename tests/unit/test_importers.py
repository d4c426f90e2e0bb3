"""Tour and pool files: pure parsing, every error naming its row."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from alerts.rules.pool_model import PoolInvalid, validate_resource
from server.tools.importers import ImportFileError, load_tours, parse_resources_file

TOURS_CSV = """tour_id,route,region,guides,start,end,timezone,travellers
T1,Silk Road,cn-west,g1;g2,2025-05-01,2025-05-10,Asia/Shanghai,32
T2,Amalfi Coast,eu-south,g3|g4 ,2025-06-01,2025-06-07,Europe/Rome,18

T3,Fjords,eu-north,,2025-07-01,2025-07-03,Europe/Oslo,5
"""


def test_tours_csv() -> None:
    rows = [tour.to_dict() for tour in load_tours(TOURS_CSV, "csv")]
    assert [row["tour_id"] for row in rows] == ["T1", "T2", "T3"]
    assert rows[0] == {"tour_id": "T1", "route": "Silk Road", "region": "cn-west", "guides": ["g1", "g2"],
                       "start": "2025-05-01", "end": "2025-05-10", "timezone": "Asia/Shanghai", "travellers": 32}
    assert rows[1]["guides"] == ["g3", "g4"]
    tours = load_tours(TOURS_CSV)  # sniffed as CSV
    assert [t.guides for t in tours] == [("g1", "g2"), ("g3", "g4"), ()]
    assert tours[2].end == date(2025, 7, 3)


def test_tours_json_list_and_mapping(tmp_path: Path) -> None:
    doc = {"route": "Silk Road", "region": "cn-west", "guides": ["g1"], "start": "2025-05-01",
           "end": "2025-05-10", "timezone": "Asia/Shanghai", "travellers": 32}
    as_list = tmp_path / "tours.json"
    as_list.write_text(json.dumps([{"tour_id": "T1", **doc}]))
    as_map = tmp_path / "tours.txt"
    as_map.write_text(json.dumps({"T1": doc}))
    def read(*args: Any) -> list[dict[str, Any]]:
        return [tour.to_dict() for tour in load_tours(*args)]

    assert read(as_list) == read(as_map, "json") == [{"tour_id": "T1", **doc}]
    assert read(str(as_list)) == [{"tour_id": "T1", **doc}]  # a file name given as a string


def test_tour_errors_name_every_bad_row() -> None:
    text = TOURS_CSV.replace("Asia/Shanghai,32", "Asia/Shanghai,many")
    text = text.replace("Europe/Oslo", "Europe/Nowhere")
    with pytest.raises(ImportFileError) as info:
        load_tours(text, "csv")
    assert info.value.errors == [
        "line 2: travellers: travellers must be an integer within 1..1000",
        "line 5: timezone: unknown timezone 'Europe/Nowhere'",
    ]


def test_tour_json_errors() -> None:
    with pytest.raises(ImportFileError, match=r"item 2: tour_id"):
        load_tours('[{"tour_id": "T1", "route": "r", "region": "x", "start": "2025-01-01",'
                   ' "end": "2025-01-01", "timezone": "UTC", "travellers": 1}, {"route": "r"}]')
    with pytest.raises(ImportFileError, match="not valid JSON"):
        load_tours("[{", "json")
    with pytest.raises(ImportFileError, match="item 1: expected an object"):
        load_tours("[1]")


def test_conflicting_duplicate_tour() -> None:
    lines = TOURS_CSV.splitlines()
    text = "\n".join([*lines, lines[1].replace(",32", ",33")])
    with pytest.raises(ImportFileError, match="line 6: tour 'T1' already appears, differently, at line 2"):
        load_tours(text)


def test_csv_header_must_name_the_columns() -> None:
    with pytest.raises(ImportFileError, match="line 1: the header lacks timezone, travellers"):
        load_tours("tour_id,route,region,guides,start,end\nT1,r,x,,2025-01-01,2025-01-01\n", "csv")


def test_extra_cells() -> None:
    with pytest.raises(ImportFileError, match="line 2: more cells"):
        load_tours("tour_id,route,region,guides,start,end,timezone,travellers\n"
                         "T1,r,x,,2025-01-01,2025-01-01,UTC,3,extra\n", "csv")


RESOURCES_CSV = """resource_id,kind,region,capacity,partner,contact,lat,lon
bus-1,vehicle,cn-west,45,Xi'an Coaches,+86 29 1234,34.26,108.94
doc-1,medical,cn-west,2,City Clinic,clinic@example.com,,
"""


def test_resources_csv() -> None:
    assert parse_resources_file(RESOURCES_CSV) == [
        {"resource_id": "bus-1", "kind": "vehicle", "region": "cn-west", "capacity": 45,
         "partner": "Xi'an Coaches", "contact": "+86 29 1234", "lat": 34.26, "lon": 108.94},
        {"resource_id": "doc-1", "kind": "medical", "region": "cn-west", "capacity": 2,
         "partner": "City Clinic", "contact": "clinic@example.com"},
    ]


def test_resources_json() -> None:
    doc = {"kind": "lodging", "region": "eu-south", "capacity": 12, "partner": "Hotel", "contact": "desk"}
    assert parse_resources_file(json.dumps({"h-1": doc})) == [{"resource_id": "h-1", **doc}]
    assert parse_resources_file(json.dumps([{"resource_id": "h-1", **doc}]), "json") == [
        {"resource_id": "h-1", **doc}]


def test_resource_errors_name_every_bad_row() -> None:
    text = RESOURCES_CSV + "bus-2,boat,cn-west,0,P,C,95,\nbus-1,vehicle,cn-west,4,P,C,,\n"
    with pytest.raises(ImportFileError) as info:
        parse_resources_file(text, "csv")
    assert info.value.errors == [
        "line 4: kind must be one of vehicle, lodging, medical, guide, interpreter",
        "line 4: capacity must be an integer 1-100000",
        "line 4: lat must be a number within -90..90",
        "line 5: resource 'bus-1' already appears at line 2",
    ]


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"partner": None, "contact": None}, None),  # optional, as the HTTP API has always had them
    ({"capacity": 100_001}, "capacity must be an integer 1-100000"),
    ({"capacity": 4.0}, "capacity must be an integer 1-100000"),
    ({"lat": 30.5}, "lon must be a number within -180..180"),  # a location is both or neither
    ({"lat": float("nan"), "lon": 1.0}, "lat must be a number within -90..90"),
    ({"kind": "boat"}, "kind must be one of vehicle, lodging, medical, guide, interpreter"),
    ({"region": "a b"}, "region must be 1-64 letters, digits, '_', '.' or '-'"),
])
def test_a_file_accepts_what_the_pool_api_accepts(change: dict, problem: str | None) -> None:
    doc = {"kind": "vehicle", "region": "cn-west", "capacity": 45, "partner": "P", "contact": "C", **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    try:
        api_answer: str | None = None
        stored = validate_resource({"resource_id": "bus-1", **doc})
    except PoolInvalid as exc:
        api_answer = exc.message
    assert api_answer == problem
    if problem is None:
        assert parse_resources_file(json.dumps({"bus-1": doc})) == [stored]
    else:
        with pytest.raises(ImportFileError) as info:
            parse_resources_file(json.dumps({"bus-1": doc}))
        assert info.value.errors == [f"resource 'bus-1': {problem}"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        parse_resources_file(tmp_path / "missing.csv")
