# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetching the project: s3:// archives cached by ETag, file:// folders and archives, and archives
that try to write outside the project."""

from __future__ import annotations

import io
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from brenda_node.project import ProjectError, fetch_project
from shared.config import load_config


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
    import subprocess
    import sys

    s3 = boto_client("s3")
    s3.create_bucket(Bucket="projects")
    archive = tarball(tmp_path / "p.tar.gz", {"scene.blend": b"b", "tex/a.png": b"a"}, top="p/")
    s3.upload_file(str(archive), "projects", "p.tar.gz")
    volume = tmp_path / "volume"
    volume.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "brenda_node.fill_volume", "s3://projects/p.tar.gz", str(volume)],
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
