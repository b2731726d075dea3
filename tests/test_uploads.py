"""Hostile but legitimate zip uploads: every member ends up counted or rejected, named, and bounded in memory."""

from __future__ import annotations

import zipfile

from sealion_app import uploads
from sealion_app.uploads import Photo, Rejected, expand_uploads
from tests.helpers import REPO_ROOT

PHOTO = (REPO_ROOT / "examples" / "noaa_train_6.jpg").read_bytes()
OTHER = (REPO_ROOT / "examples" / "noaa_train_4.jpg").read_bytes()


def _names(items) -> list[tuple[str, str]]:
    return [(type(i).__name__, i.name) for i in items]


def test_parent_paths_are_counted_under_their_own_name(tmp_path):
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("../escape.jpg", PHOTO)  # never extracted to disk: it is only a name
        out.writestr("day1/../IMG_2.jpg", OTHER)
    items = expand_uploads([archive], workdir=tmp_path)
    assert _names(items) == [("Photo", "survey.zip/../escape.jpg"), ("Photo", "survey.zip/day1/../IMG_2.jpg")]
    assert [item.read() for item in items] == [PHOTO, OTHER]


def test_repeated_names_are_both_counted_and_told_apart(tmp_path):
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("IMG_1.jpg", PHOTO)
        out.writestr("IMG_1.jpg", OTHER)  # zipfile warns, but such archives exist
    items = expand_uploads([archive, archive], workdir=tmp_path)
    assert _names(items) == [
        ("Photo", "survey.zip/IMG_1.jpg"),
        ("Photo", "survey.zip/IMG_1.jpg (2)"),
        ("Photo", "survey.zip (2)/IMG_1.jpg"),  # the same archive uploaded twice
        ("Photo", "survey.zip (2)/IMG_1.jpg (2)"),
    ]
    assert [item.read() for item in items] == [PHOTO, OTHER, PHOTO, OTHER]  # the first is not lost to the second


def test_a_name_that_is_not_utf8_does_not_fail_the_others(tmp_path):
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("good.jpg", PHOTO)
        bad = zipfile.ZipInfo("ab.jpg")
        bad.flag_bits |= 0x800  # says "UTF-8 name" …
        out.writestr(bad, OTHER)
    archive.write_bytes(archive.read_bytes().replace(b"ab.jpg", b"\xff\xfe.jpg"))  # … but the bytes are not
    items = expand_uploads([archive], workdir=tmp_path / "work")
    assert [type(i) for i in items] == [Photo, Photo]
    assert items[0].name == "survey.zip/good.jpg" and items[0].read() == PHOTO
    assert items[1].name.startswith("survey.zip/") and items[1].name.endswith(".jpg") and items[1].read() == OTHER


def test_a_member_that_inflates_past_its_header_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_MEMBER_BYTES", 4 * 1024**2)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("good.jpg", PHOTO)
        out.writestr("bomb.jpg", b"\0" * (64 * 1024**2))
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo("bomb.jpg")
    # Headers that lie: uncompressed size = compressed size, so the size and ratio checks pass.
    for header in (b"PK\x03\x04", b"PK\x01\x02"):
        start = 0
        while (start := data.find(header, start)) >= 0:
            size_at = start + (22 if header == b"PK\x03\x04" else 24)
            if int.from_bytes(data[size_at : size_at + 4], "little") == info.file_size:
                data[size_at : size_at + 4] = info.compress_size.to_bytes(4, "little")
            start += 4
    archive.write_bytes(bytes(data))
    good, bomb = expand_uploads([archive], workdir=tmp_path)
    assert isinstance(bomb, Photo) and good.read() == PHOTO
    try:
        bomb.read()
    except (uploads.MemberTooLarge, zipfile.BadZipFile) as exc:  # stopped at the cap or at the size it claimed
        assert "bomb.jpg" in str(exc)
    else:
        raise AssertionError("the lying member was read in full")


def test_hidden_files_are_accounted_for_and_photos_past_the_limit_are_refused(tmp_path, monkeypatch):
    archive = tmp_path / "mac.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a/1.jpg", PHOTO)
        out.writestr("__MACOSX/a/._1.jpg", b"x")
        out.writestr("a/.DS_Store", b"x")
    items = expand_uploads([archive], workdir=tmp_path)
    assert _names(items) == [("Rejected", "mac.zip"), ("Photo", "mac.zip/a/1.jpg")]
    assert "2 hidden or macOS metadata file(s)" in items[0].reason

    monkeypatch.setattr(uploads, "MAX_PHOTOS_PER_REQUEST", 2)
    photos = []
    for index in range(3):
        photos.append(tmp_path / f"{index}.jpg")
        photos[-1].write_bytes(PHOTO)
    items = expand_uploads(photos, workdir=tmp_path)
    assert [type(i) for i in items] == [Photo, Photo, Rejected]
    assert "over the 2 photos one request may count" in items[2].reason and "--run" in items[2].reason


def test_every_input_is_accounted_for_exactly_once(tmp_path):
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name in ("x.jpg", "x.jpg", "../y.jpg", "notes.txt", "inner.zip", ".hidden.jpg"):
            out.writestr(name, PHOTO)
    items = expand_uploads([archive], workdir=tmp_path)
    names = [i.name for i in items]
    assert len(names) == len(set(names))  # unambiguous
    assert _names(items) == [  # 5 listed one by one + 1 line for the hidden file
        ("Rejected", "mixed.zip"), ("Photo", "mixed.zip/x.jpg"), ("Photo", "mixed.zip/x.jpg (2)"),
        ("Photo", "mixed.zip/../y.jpg"), ("Rejected", "mixed.zip/notes.txt"), ("Rejected", "mixed.zip/inner.zip"),
    ]  # fmt: skip
    reasons = [i.reason for i in items if isinstance(i, Rejected)]
    assert "1 hidden" in reasons[0] and "not a photo" in reasons[1] and "inside a zip are not opened" in reasons[2]
