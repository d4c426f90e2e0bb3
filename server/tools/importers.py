"""Reading tour and emergency-pool files (CSV or JSON) for ``tourpulse tours import`` and ``pool import``.

Pure: text in, plain dicts (or validated :class:`~server.storage.tours.Tour`) out, no Redis. Every error names where
it is (``line 4`` of a CSV, ``item 2`` or ``tour 'T1'`` of a JSON file) and a file reports all its bad rows at
once, so an operator fixes a spreadsheet in one pass. A file with any bad row is refused whole
(:class:`ImportFileError`).

Tours CSV header: ``tour_id,route,region,guides,start,end,timezone,travellers`` (guides separated by ``;`` or
``|``). Tours JSON: a list of objects with ``tour_id``, or an object mapping tour id -> tour.
Resources (contract §7): ``resource_id,kind,region,capacity,partner,contact`` and optional ``lat,lon``; JSON
as for tours, keyed by ``resource_id``. A resource is checked by the pool's own validator
(:func:`alerts.rules.pool_model.check_resource`), so a file accepts exactly what ``PUT /api/pool/resources`` does.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from alerts.rules.pool_model import check_resource
from server.storage.tours import Tour, TourInvalid, validate_tour

Format = Literal["csv", "json"]
TOUR_COLUMNS = ("tour_id", "route", "region", "guides", "start", "end", "timezone", "travellers")
RESOURCE_COLUMNS = ("resource_id", "kind", "region", "capacity", "partner", "contact")
_GUIDE_SEPARATORS = re.compile(r"[;|]")
_INT = re.compile(r"[+-]?\d+")


class ImportFileError(ValueError):
    """A file that cannot be imported; ``errors`` lists every problem, each naming its line or item."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _read(path_or_text: str | Path, fmt: Format | None) -> tuple[str, Format]:
    """The text and its format: a Path or an existing file's name is read; any other string is the text."""
    text: str
    suffix = ""
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and Path(path_or_text).is_file()):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8-sig")  # spreadsheets like to write a BOM
        except (OSError, UnicodeDecodeError) as exc:
            raise ImportFileError([f"cannot read {path}: {exc}"]) from None
        suffix = path.suffix.lower().lstrip(".")
    else:
        text = path_or_text.removeprefix("\ufeff")
    if fmt is None:
        if suffix in ("csv", "json"):
            fmt = "json" if suffix == "json" else "csv"
        else:
            fmt = "json" if text.lstrip()[:1] in ("[", "{") else "csv"
    if fmt not in ("csv", "json"):
        raise ImportFileError([f"unknown format {fmt!r} (csv or json)"])
    return text, fmt


def _csv_rows(text: str, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        lacks, expected = ", ".join(missing), ",".join(required)
        raise ImportFileError([f"line 1: the header lacks {lacks} (expected {expected})"])
    reader.fieldnames = header
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            raise ImportFileError([f"{where}: more cells than the header has columns"])
        yield where, {k: (v or "").strip() for k, v in row.items()}


def _json_items(text: str, id_field: str, noun: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ImportFileError([f"not valid JSON: {exc}"]) from None
    if isinstance(doc, dict):
        for key, item in doc.items():
            if not isinstance(item, dict):
                raise ImportFileError([f"{noun} {key!r}: expected an object"])
            yield f"{noun} {key!r}", {**item, id_field: key}
    elif isinstance(doc, list):
        for index, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                raise ImportFileError([f"item {index}: expected an object"])
            yield f"item {index}", dict(item)
    else:
        raise ImportFileError([f"expected a list of {noun}s or an object mapping {id_field} to {noun}"])


def _int_cell(value: str) -> int | str:
    # a cell that is not a whole number stays text, so validation reports it against its field
    return int(value) if _INT.fullmatch(value) else value


def _tour_rows(path_or_text: str | Path, fmt: Format | None) -> list[tuple[str, str, dict[str, Any]]]:
    text, fmt = _read(path_or_text, fmt)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if fmt == "csv":
        for where, row in _csv_rows(text, TOUR_COLUMNS):
            doc: dict[str, Any] = {k: v for k, v in row.items() if k in TOUR_COLUMNS and k != "tour_id"}
            doc["guides"] = [g.strip() for g in _GUIDE_SEPARATORS.split(row["guides"]) if g.strip()]
            doc["travellers"] = _int_cell(row["travellers"])
            rows.append((where, row["tour_id"], doc))
    else:
        for where, item in _json_items(text, "tour_id", "tour"):
            tour_id = item.pop("tour_id", None)
            rows.append((where, tour_id if isinstance(tour_id, str) else "", item))
    return rows


def load_tours(path_or_text: str | Path, fmt: Format | None = None) -> list[Tour]:
    """Every tour of the file, validated; or :class:`ImportFileError` listing every bad row."""
    tours: list[Tour] = []
    errors: list[str] = []
    seen: dict[str, tuple[str, Tour]] = {}
    for where, tour_id, doc in _tour_rows(path_or_text, fmt):
        try:
            tour = validate_tour(tour_id, doc)
        except TourInvalid as exc:
            errors.append(f"{where}: {exc.field}: {exc.message}")
            continue
        if tour.tour_id in seen:
            first, other = seen[tour.tour_id]
            if other != tour:
                errors.append(f"{where}: tour {tour.tour_id!r} already appears, differently, at {first}")
            continue
        seen[tour.tour_id] = (where, tour)
        tours.append(tour)
    if errors:
        raise ImportFileError(errors)
    return tours


def _coordinate(value: str) -> float | str | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def parse_resources_file(path_or_text: str | Path, fmt: Format | None = None) -> list[dict[str, Any]]:
    """Every resource of the file, checked; or :class:`ImportFileError` listing every bad row."""
    text, fmt = _read(path_or_text, fmt)
    rows: list[tuple[str, dict[str, Any]]] = []
    if fmt == "csv":
        for where, row in _csv_rows(text, RESOURCE_COLUMNS):
            doc: dict[str, Any] = {k: row[k] for k in RESOURCE_COLUMNS}
            doc["capacity"] = _int_cell(row["capacity"])
            for name in ("lat", "lon"):
                value = _coordinate(row.get(name, ""))
                if value is not None:
                    doc[name] = value
            rows.append((where, doc))
    else:
        rows = list(_json_items(text, "resource_id", "resource"))
    resources: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for where, doc in rows:
        resource, problems = check_resource(doc)  # the pool's own validator: what it accepts, the pool stores
        if problems:
            errors += [f"{where}: {p.message}" for p in problems]
            continue
        resource_id = resource["resource_id"]
        if resource_id in seen:
            errors.append(f"{where}: resource {resource_id!r} already appears at {seen[resource_id]}")
            continue
        seen[resource_id] = where
        resources.append(resource)
    if errors:
        raise ImportFileError(errors)
    return resources
