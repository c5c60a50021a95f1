# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender version of the .blend a job renders, read where its project is: a folder, a
tarball (a file or in S3, read only up to that member) and an uploaded version in the content
store (one ranged GET of its first piece)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from shared.core.config import load_config
from shared.core.errors import BrendaError
from shared.core.progress import Progress
from shared.core.urls import S3Url
from shared.project.content import ContentStore, HashCache, Manifest, manifest_of
from shared.project.version import project_blender

SAVED_BY_5_2 = zstandard.ZstdCompressor().compress(b"BLENDER17-01v0502REND" + bytes(5000))
SAVED_BY_4_5 = b"BLENDER-v405RENDH" + bytes(5000)


def tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


def test_a_folder_names_its_one_blend_or_the_one_asked_for(tmp_path: Path) -> None:
    config = load_config(environ={})
    (tmp_path / "shot.blend").write_bytes(SAVED_BY_5_2)
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "props.blend").write_bytes(SAVED_BY_4_5)
    assert project_blender(config, f"file://{tmp_path}", None) == "5.2"
    assert project_blender(config, f"file://{tmp_path}", "libs/props.blend") == "4.5"
    (tmp_path / "notes.blend").write_text("not a blend")
    assert project_blender(config, f"file://{tmp_path}", None) is None  # two: the job names one
    with pytest.raises(BrendaError, match=r"notes\.blend is not a \.blend file"):
        project_blender(config, f"file://{tmp_path}", "notes.blend")


def test_a_tarball_is_read_up_to_the_blend_on_disk_and_in_s3(
    tmp_path: Path, boto_client: Any
) -> None:
    # A project in one folder, a library of another version before the file the job renders.
    archive = tarball(
        tmp_path / "shot.tar.gz",
        {
            "shot/textures/wood.png": b"png",
            "shot/libs/props.blend": SAVED_BY_4_5,
            "shot/shot.blend": SAVED_BY_5_2,
        },
    )
    config = load_config(environ={})
    assert project_blender(config, f"file://{archive}", None) == "5.2"
    assert project_blender(config, f"file://{archive}", "shot.blend") == "5.2"
    assert project_blender(config, f"file://{archive}", "libs/props.blend") == "4.5"
    unwrapped = tarball(
        tmp_path / "packed.tar.gz", {"libs/props.blend": SAVED_BY_4_5, "shot.blend": SAVED_BY_5_2}
    )
    assert project_blender(config, f"file://{unwrapped}", None) == "5.2"
    boto_client("s3").create_bucket(Bucket="studio")
    boto_client("s3").upload_file(str(archive), "studio", "projects/shot.tar.gz")
    assert project_blender(config, "s3://studio/projects/shot.tar.gz", "shot.blend") == "5.2"
    assert project_blender(config, "s3://studio/projects/none.tar.gz", None) is None


def test_an_uploaded_version_is_read_from_its_first_stored_piece(
    tmp_path: Path, boto_client: Any
) -> None:
    project = tmp_path / "project"
    (project / "shots").mkdir(parents=True)
    (project / "shots" / "shot1.blend").write_bytes(SAVED_BY_4_5 + bytes(9 << 20))  # in blocks
    boto_client("s3").create_bucket(Bucket="studio")
    config = load_config(environ={})
    store = ContentStore(boto_client("s3"), S3Url("studio", "projects/"))
    blend = project / "shots" / "shot1.blend"
    manifest: Manifest = manifest_of(
        [("shots/shot1.blend", blend, blend)], HashCache(tmp_path / "hashes"), Progress()
    )
    sent = store.upload(manifest, lambda entry: project / entry.path, Progress(), pointer="shot1")
    assert manifest.files[0].blocks  # stored in pieces: only the first is read
    assert project_blender(config, sent.manifest_url, "shots/shot1.blend") == "4.5"
    assert project_blender(config, sent.manifest_url, None) is None  # not at the top
