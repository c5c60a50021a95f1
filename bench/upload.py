# SPDX-License-Identifier: GPL-3.0-or-later
"""Bytes and seconds to upload a project and fetch it on a node: the content store against the
whole tarball, for a first upload, then after changing one texture, then after a small edit of
the .blend.

The project is generated: a few hundred textures of random bytes (as incompressible as PNG or
EXR), a few large caches and a .blend. Both ways run in the same process against the same moto
server on loopback, one after the other; the node side builds each version in one work folder,
as a node that rendered the previous version would.

Run: ``python bench/upload.py [--files N] [--large-mb N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from brenda_node.project import fetch_url
from shared.aws import s3
from shared.aws.session import make_client
from shared.core.config import load_config
from shared.core.progress import Progress
from shared.core.urls import S3Url, parse_url
from shared.project.content import ContentStore, HashCache, folder_files, manifest_of
from shared.workstation.local_aws import local_endpoint

MB = 1 << 20


def make_project(folder: Path, files: int, large_mb: int) -> None:
    (folder / "textures").mkdir(parents=True)
    (folder / "caches").mkdir()
    for number in range(files):
        size = 16 * 1024 + (number * 7919) % (256 * 1024)
        (folder / "textures" / f"texture{number:03d}.png").write_bytes(os.urandom(size))
    for number in range(3):
        (folder / "caches" / f"sim{number}.vdb").write_bytes(os.urandom(large_mb * MB))
    (folder / "shot.blend").write_bytes(os.urandom(64 * MB))


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.monotonic()
    sent = work()
    return sent, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300, help="textures (300)")
    parser.add_argument("--large-mb", type=int, default=40, help="size of each of 3 caches (40)")
    args = parser.parse_args()
    with local_endpoint(), tempfile.TemporaryDirectory(prefix="brenda-bench-upload-") as scratch:
        folder = Path(scratch)
        project = folder / "project"
        make_project(project, args.files, args.large_mb)
        client = make_client("s3", load_config())
        client.create_bucket(Bucket="bench")
        store = ContentStore(client, S3Url("bench", "projects/"))
        cache = HashCache(folder / "hashes.json")
        environ = {
            **os.environ,
            "BRENDA_WORK_DIR": str(folder / "node"),
            "BRENDA_FARM_PROJECTS": "s3://bench/projects/",
        }
        node_config = load_config(environ=environ)
        (folder / "node" / "content").mkdir(parents=True)

        versions: list[str] = []

        def content_upload() -> int:
            files = list(folder_files(project))
            manifest = manifest_of(files, cache, Progress())
            local = {name: path for name, path, _ in files}
            sent = store.upload(manifest, lambda entry: local[entry.path], Progress())
            versions.append(sent.manifest_url)
            return sent.sent_bytes

        def tarball_upload() -> int:
            archive = folder / "project.tar.gz"
            with tarfile.open(archive, "w:gz", compresslevel=1) as bundle:
                bundle.add(project, arcname=".")
            s3.upload_file(client, archive, "bench", "projects/shot.tar.gz")
            return archive.stat().st_size

        fetch_log = FetchedBytes()
        logging.getLogger("brenda_node.project").addHandler(fetch_log)
        logging.getLogger("brenda_node.project").setLevel(logging.INFO)

        def node_fetch() -> int:
            """Bytes the node downloads (what it puts together from blocks is not counted)."""
            work = folder / "node" / "job"
            work.mkdir(exist_ok=True)
            fetch_url(parse_url(versions[-1]), node_config, work)
            return fetch_log.last

        size = sum(path.stat().st_size for path in project.rglob("*") if path.is_file())
        count = sum(1 for path in project.rglob("*") if path.is_file())
        print(f"project: {count} files, {size / MB:.1f} MB")
        steps: list[tuple[str, Callable[[], None]]] = [
            ("first upload", lambda: None),
            ("one 1 MB texture changed", lambda: change(project / "textures", MB)),
            ("small edit of the .blend", lambda: edit(project / "shot.blend")),
        ]
        for label, step in steps:
            step()
            sent, seconds = timed(content_upload)
            fetched, fetch_seconds = timed(node_fetch)
            whole, whole_seconds = timed(tarball_upload)
            print(
                f"{label:>26}: content store sends {sent / MB:8.2f} MB in {seconds:5.2f} s, "
                f"node fetches {fetched / MB:8.2f} MB in {fetch_seconds:5.2f} s; "
                f"tarball {whole / MB:7.2f} MB up in {whole_seconds:5.2f} s, as much down "
                f"({whole / max(sent, 1):,.0f}x the bytes)"
            )
    return 0


class FetchedBytes(logging.Handler):
    """The byte count of the node's last "N of M files fetched (B bytes)" log line."""

    def __init__(self) -> None:
        super().__init__()
        self.last = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "fetched (%d bytes)" in record.msg and isinstance(record.args, tuple):
            self.last = int(record.args[-1])


def change(textures: Path, size: int) -> None:
    (textures / "texture007.png").write_bytes(os.urandom(size))


def edit(blend: Path) -> None:
    with blend.open("r+b") as file:
        file.seek(33 * MB)
        file.write(b"edited")


if __name__ == "__main__":
    raise SystemExit(main())
