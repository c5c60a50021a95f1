# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetching the project: s3:// archives cached by ETag, file:// folders and archives, and archives
that try to write outside the project."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from brenda_node.project import Member, ProjectError, check_members, fetch_project
from shared.core.config import load_config


def config_for(project: str, **settings: str) -> Any:
    environ = {**os.environ, "BRENDA_BLENDER_PROJECT": project}
    environ.update({f"BRENDA_{key}": value for key, value in settings.items()})
    return load_config(environ=environ)


def tarball(path: Path, members: dict[str, bytes], *, top: str = "") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(top + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_file_folder_is_used_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    folder.mkdir()
    assert fetch_project(config_for(f"file://{folder}"), tmp_path / "work") == folder


def test_s3_tarball_is_fetched_once_per_etag_and_descends_into_its_folder(
    aws: str, boto_client: Any, tmp_path: Path
) -> None:
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="projects")
    archive = tarball(tmp_path / "p.tar.gz", {"scene.blend": b"v1"}, top="myproject/")
    s3.upload_file(str(archive), "projects", "shots/p.tar.gz")
    work = tmp_path / "work"
    config = config_for("s3://projects/shots/p.tar.gz")
    project = fetch_project(config, work)
    assert project == work / "project" / "myproject"
    assert (project / "scene.blend").read_bytes() == b"v1"
    (project / "scene.blend").write_bytes(b"touched")
    assert fetch_project(config, work) == project
    assert (project / "scene.blend").read_bytes() == b"touched"
    always = config_for("s3://projects/shots/p.tar.gz", BLENDER_PROJECT_ALWAYS_REFETCH="1")
    assert (fetch_project(always, work) / "scene.blend").read_bytes() == b"v1"
    tarball(archive, {"scene.blend": b"v2"}, top="myproject/")
    s3.upload_file(str(archive), "projects", "shots/p.tar.gz")
    assert (fetch_project(config, work) / "scene.blend").read_bytes() == b"v2"
    assert sorted(path.name for path in work.iterdir()) == ["project"]


def test_zip_archive_from_file_url(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("scene.blend", b"zip")
        bundle.writestr("textures/wood.png", b"png")
    project = fetch_project(config_for(f"file://{archive}"), tmp_path / "work")
    assert (project / "textures" / "wood.png").read_bytes() == b"png"


def test_missing_s3_project_is_one_sentence(aws: str, boto_client: Any, tmp_path: Path) -> None:
    boto_client("s3").create_bucket(Bucket="projects")
    with pytest.raises(ProjectError, match=r"^The project s3://projects/none.tar.gz does not"):
        fetch_project(config_for("s3://projects/none.tar.gz"), tmp_path / "work")


EVIL_MEMBERS = {
    "dotdot": ("textures/../../evil.txt", None, None),
    "absolute": ("/tmp/brenda-test-evil.txt", None, None),
    "symlink out": ("textures/link", tarfile.SYMTYPE, "../../evil.txt"),
    "absolute symlink": ("passwd", tarfile.SYMTYPE, "/etc/passwd"),
    "hard link out": ("copy", tarfile.LNKTYPE, "../evil.txt"),
    "device": ("null", tarfile.CHRTYPE, None),
}


def evil_tar(path: Path, kind: str) -> Path:
    name, link_type, target = EVIL_MEMBERS[kind]
    with tarfile.open(path, "w") as archive:
        good = tarfile.TarInfo("scene.blend")
        good.size = 2
        archive.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        if link_type is None:
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
        else:
            info.type = link_type
            info.linkname = target or ""
            archive.addfile(info)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dotdot", "'textures/../../evil.txt' climbs out of the project with '..'"),
        ("absolute", "'/tmp/brenda-test-evil.txt' has an absolute path"),
        ("symlink out", "'textures/link' is a link to ../../evil.txt, outside the project"),
        ("absolute symlink", "'passwd' is a link to /etc/passwd, outside the project"),
        ("hard link out", "'copy' is a link to ../evil.txt, outside the project"),
        ("device", "'null' is a device or other special file"),
    ],
)
def test_malicious_tar_is_refused_and_writes_nothing(
    tmp_path: Path, kind: str, message: str
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    archive = evil_tar(uploads / "p.tar", kind)
    work = tmp_path / "work"
    with pytest.raises(ProjectError, match=f"is unsafe: {re.escape(message)}"):
        fetch_project(config_for(f"file://{archive}"), work)
    assert not (tmp_path / "evil.txt").exists() and not (uploads / "evil.txt").exists()
    assert not Path("/tmp/brenda-test-evil.txt").exists()
    assert list(work.iterdir()) == []


def test_malicious_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../evil.txt", b"evil")
    with pytest.raises(ProjectError, match="'../evil.txt' climbs out of the project"):
        fetch_project(config_for(f"file://{archive}"), tmp_path / "work")
    assert not (tmp_path / "evil.txt").exists()


def test_truncated_archive_keeps_the_previous_project(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "p.tar.gz", {"scene.blend": os.urandom(100_000)})
    work = tmp_path / "work"
    project = fetch_project(config_for(f"file://{archive}"), work)
    archive.write_bytes(archive.read_bytes()[:50_000])
    with pytest.raises(ProjectError, match="is damaged or truncated"):
        fetch_project(config_for(f"file://{archive}"), work)
    assert (project / "scene.blend").stat().st_size == 100_000
    assert sorted(path.name for path in work.iterdir()) == ["project"]


def test_fill_volume_extracts_a_project_into_a_folder(
    aws: str, boto_client: Any, tmp_path: Path
) -> None:

    s3 = boto_client("s3")
    s3.create_bucket(Bucket="projects")
    archive = tarball(tmp_path / "p.tar.gz", {"scene.blend": b"b", "tex/a.png": b"a"}, top="p/")
    s3.upload_file(str(archive), "projects", "p.tar.gz")
    volume = tmp_path / "volume"
    volume.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli.fill_volume", "s3://projects/p.tar.gz", str(volume)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(volume)) for p in volume.rglob("*")) == [
        "scene.blend",
        "tex",
        "tex/a.png",
    ]


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def long_symlink_chain(path: Path) -> Path:
    """The shape of the public CVE-2025-4517 example: nested links whose resolved path outgrows
    PATH_MAX, a link climbing out through them, and a file and a hard link written through it."""
    component = "d" * 247
    steps = "abcdefghijklmnop"
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    folder = ""
    for step in steps:
        members.append((directory(os.path.join(folder, component)), None))
        members.append((link(os.path.join(folder, step), component), None))
        folder = os.path.join(folder, component)
    deep = os.path.join("/".join(steps), "l" * 254)
    members.append((link(deep, "../" * len(steps)), None))
    members.append((link("escape", deep + "/../.."), None))
    members.append((tarfile.TarInfo("escape/victim.txt"), b"overwritten"))
    members.append((link("escape/hard", "escape/victim.txt", tarfile.LNKTYPE), None))
    return write_tar(path, members)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [
                (directory("sub"), None),
                (link("sub/root", ".."), None),
                (link("esc", "sub/root/sub/root/../.."), None),
                (tarfile.TarInfo("esc/evil.txt"), b"evil"),
            ],
            "'esc' is a link through the link 'sub/root'",
        ),
        (
            [(link("esc", "."), None), (tarfile.TarInfo("esc/evil.txt"), b"evil")],
            "'esc/evil.txt' is reached through the link 'esc'",
        ),
        (
            [(tarfile.TarInfo("scene.blend"), b"ok"), (link("scene.blend", "/etc/passwd"), None)],
            "'scene.blend' appears twice, once as a link",
        ),
        (
            [(link("later", "a/b"), None), (directory("a"), None), (link("a/b", ".."), None)],
            "'later' is a link through the link 'a/b'",
        ),
        (
            [(directory("a"), None), (link("copy", "a", tarfile.LNKTYPE), None)],
            "'copy' is a hard link to a, not a file",
        ),
    ],
    ids=[
        "link through a link",
        "file through a link",
        "link replacing a file",
        "later link",
        "hard",
    ],
)
def test_archive_trees_that_go_through_their_own_links_are_refused(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], message: str
) -> None:
    archive = write_tar(tmp_path / "p.tar", members)
    work = tmp_path / "work"
    with pytest.raises(ProjectError, match=f"is unsafe: {re.escape(message)}"):
        fetch_project(config_for(f"file://{archive}"), work)
    assert list(work.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "p.tar", "work"]


def test_the_long_symlink_escape_is_refused_and_overwrites_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    work = tmp_path / "nodes" / "work"
    work.mkdir(parents=True)
    archive = long_symlink_chain(tmp_path / "cve.tar")
    with pytest.raises(ProjectError, match="is unsafe: '.*' is reached through the link 'a'"):
        fetch_project(config_for(f"file://{archive}"), work)
    assert victim.read_text() == "precious"
    assert list(work.iterdir()) == []


def test_a_zip_link_inflating_to_a_huge_size_is_refused_unread(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        info = zipfile.ZipInfo("textures")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(info, b"a" * 50_000_000, compress_type=zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 100_000
    with pytest.raises(ProjectError, match="'textures' is a link longer than any path"):
        fetch_project(config_for(f"file://{archive}"), tmp_path / "work")


def test_more_bytes_than_the_disk_has_free_are_refused() -> None:
    members = [Member("a.exr", "file", 60), Member("b.exr", "file", 60)]
    check_members(members[:1], "p.tar", free_bytes=100)
    with pytest.raises(ProjectError, match="p.tar holds 120 bytes or more, more than the 100"):
        check_members(members, "p.tar", free_bytes=100)


def test_links_inside_the_project_still_extract(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "p.tar",
        [
            (tarfile.TarInfo("textures/wood.png"), b"png"),
            (link("latest.png", "textures/wood.png"), None),
            (link("copy.png", "textures/wood.png", tarfile.LNKTYPE), None),
            (tarfile.TarInfo("scene.blend"), b"blend"),
        ],
    )
    project = fetch_project(config_for(f"file://{archive}"), tmp_path / "work")
    assert (project / "latest.png").read_bytes() == b"png"
    assert (project / "latest.png").is_symlink()
    assert (project / "copy.png").read_bytes() == b"png"
