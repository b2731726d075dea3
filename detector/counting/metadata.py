"""Survey metadata from a photo's EXIF header: when, where and with what it was taken. Never invented.

Reads the header only (Pillow opens lazily; no pixels are decoded). A field the photo does not carry is None.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

_EXIF = ExifTags.Base
_GPS = ExifTags.GPS


@dataclass(frozen=True)
class PhotoMetadata:
    """What the photo's EXIF says; None where it says nothing (or something unreadable)."""

    captured_at: str | None = None  # ISO 8601 local time as the camera wrote it (EXIF has no zone unless OffsetTime)
    latitude: float | None = None  # decimal degrees, north positive
    longitude: float | None = None  # decimal degrees, east positive
    altitude_m: float | None = None  # metres above sea level (negative below)
    camera: str | None = None  # "Make Model"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PhotoMetadata:
        data = data or {}
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    @staticmethod
    def csv_header() -> list[str]:
        return [f.name for f in fields(PhotoMetadata)]

    def csv_row(self) -> list[Any]:
        return ["" if value is None else value for value in asdict(self).values()]


def _rational(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number == number else None  # NaN (0/0 rationals) is "not given"


def _degrees(dms: Any, ref: Any) -> float | None:
    """EXIF (degrees, minutes, seconds) rationals and an N/S/E/W reference as signed decimal degrees."""
    try:
        degrees, minutes, seconds = (_rational(part) for part in dms)
    except (TypeError, ValueError):
        return None
    if degrees is None or minutes is None or seconds is None:
        return None
    value = degrees + minutes / 60 + seconds / 3600
    ref = ref.decode(errors="replace") if isinstance(ref, bytes) else str(ref or "")
    return round(-value if ref.strip().upper() in {"S", "W"} else value, 7)


def _timestamp(text: Any, offset: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    if isinstance(offset, str) and len(offset.strip()) == 6 and offset.strip()[0] in "+-":
        iso += offset.strip()
    return iso


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    text = str(value).strip().strip("\x00").strip() if value is not None else ""
    return text or None


def read_metadata(source: str | Path | bytes) -> PhotoMetadata:
    """The EXIF metadata of a photo file (or its bytes); an empty record when there is none or it is unreadable."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            exif = image.getexif()
            if not exif:
                return PhotoMetadata()
            details = exif.get_ifd(ExifTags.IFD.Exif)
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # noqa: BLE001 - a photo whose header cannot be read simply has no metadata here
        return PhotoMetadata()
    captured = _timestamp(details.get(_EXIF.DateTimeOriginal) or exif.get(_EXIF.DateTime), details.get(0x9011))
    altitude = _rational(gps.get(_GPS.GPSAltitude))
    if altitude is not None and gps.get(_GPS.GPSAltitudeRef) in (1, b"\x01"):
        altitude = -altitude
    camera = " ".join(part for part in (_text(exif.get(_EXIF.Make)), _text(exif.get(_EXIF.Model))) if part)
    return PhotoMetadata(
        captured_at=captured,
        latitude=_degrees(gps[_GPS.GPSLatitude], gps.get(_GPS.GPSLatitudeRef)) if _GPS.GPSLatitude in gps else None,
        longitude=_degrees(gps[_GPS.GPSLongitude], gps.get(_GPS.GPSLongitudeRef)) if _GPS.GPSLongitude in gps else None,
        altitude_m=round(altitude, 2) if altitude is not None else None,
        camera=camera or None,
    )
