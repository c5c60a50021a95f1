# SPDX-License-Identifier: GPL-3.0-or-later
"""Content-addressed projects: each file stored once, named by its hash, and a manifest per
project version, so an upload sends only what the store lacks and a node fetches only what it
lacks. No bpy module use.

Layout under the farm's projects prefix (``FARM_PROJECTS``, like ``s3://bucket/projects/``):

- ``content/<sha256>``: a file's bytes;
- ``manifests/<sha256>.json``: a project version, every file's path, size, hash and mode, named
  by the hash of its own text, so a job naming it renders exactly that version;
- ``latest/<project>/<blend>.manifest`` (a whole folder's: ``latest/<project>.manifest``): the
  URL of the latest manifest of a project's .blend (what the add-on pushes), keyed by the project
  (its root folder's name), so two projects that each have a ``main.blend`` keep their own.
  Pointers written before were ``<blend stem>.manifest``: gc still keeps what they name.

SHA-256, not a faster non-cryptographic hash (xxh128): the store is shared by every project of
the farm and a node trusts a name for its bytes, so names must not collide even on purpose;
hashlib's SHA-256 uses the CPU's SHA extensions where there are some (well over 1 GB/s a core),
and a cache keyed by path, size, modification time and inode change time spares re-hashing
unchanged files.

Big .blend files are stored in fixed 4 MiB blocks, each by its hash: a value edit (an object
moved, a light changed) rewrites a few bytes in place, so a re-upload sends a block or two, not
the file. ``bench/blend_chunks.py`` measured why fixed blocks and not content-defined chunks: on
a 40 MB .blend, moving an object changed 1.05 MB of 1 MB blocks and 0.48 MB of content-defined
chunks, while adding an object changed 99 % either way (every block header holds an old memory
address, and those all move); content-defined chunking costs a rolling hash over every byte for
the difference between one block and half of one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ..aws import s3
from ..aws.session import cloud_errors
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..core.urls import S3Url

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Done = TypeVar("Done")

MANIFEST_FORMAT = 1
CONTENT = "content/"
MANIFESTS = "manifests/"
POINTER_SUFFIX = ".manifest"
LATEST = "latest/"
BLOCK = 4 << 20
"""Size of the blocks big .blend files are stored in."""
BLOCKED_SUFFIX = ".blend"
CHECKED = "sha256"
"""The metadata an upload gives a piece once it checked the bytes it sent hash to its name."""
REUSE_MARK_AGE = timedelta(hours=1)
"""A piece an upload reuses is marked as new when it is older than this (see ``missing``)."""
PARALLEL = 16
"""Files asked about or sent at once (each big file is also sent in parts, in parallel)."""


@dataclass(frozen=True)
class ProjectVersion:
    """One uploaded version of a project: the manifest ``manifests/<name>.json`` of the store
    under ``projects`` (``FARM_PROJECTS``), named by the hash of its text."""

    projects: S3Url
    name: str

    @classmethod
    def at(cls, url: S3Url) -> ProjectVersion | None:
        """The version ``s3://.../projects/manifests/H.json`` names; None for any other URL (a
        tarball)."""
        path = PurePosixPath(url.prefix.rstrip("/"))
        if path.suffix != ".json" or path.parent.name != MANIFESTS.rstrip("/"):
            return None
        folder = path.parent.parent.as_posix()
        return cls(S3Url(url.bucket, "" if folder == "." else f"{folder}/"), path.stem)

    @property
    def key(self) -> str:
        return self.projects.key(f"{MANIFESTS}{self.name}.json")

    @property
    def url(self) -> str:
        return f"s3://{self.projects.bucket}/{self.key}"


def pointer_name(project: str, blend: str | None = None) -> str:
    """What names the latest version of ``blend`` (its path in the project; None: the whole
    project folder) in the project ``project`` (its root folder's name)."""
    if not project or "/" in project or project in (".", ".."):
        raise BrendaError(f"'{project}' cannot name a project: give its folder's name.")
    return project if blend is None else f"{project}/{blend}"


def file_hash(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


@dataclass(frozen=True)
class Entry:
    path: str
    """Relative POSIX path inside the project."""
    size: int
    hash: str
    mode: int
    """0o755 for executables, else 0o644."""
    blocks: tuple[str, ...] = ()
    """The hashes of its BLOCK-sized pieces, when it is stored in blocks (a big .blend)."""

    @property
    def stored(self) -> tuple[str, ...]:
        """What the store holds of it: its blocks, or the whole file."""
        return self.blocks or (self.hash,)


def is_blocked(name: str, size: int) -> bool:
    return name.endswith(BLOCKED_SUFFIX) and size > 2 * BLOCK


def block_hashes(path: Path) -> tuple[str, ...]:
    hashes = []
    with path.open("rb") as source:
        while piece := source.read(BLOCK):
            hashes.append(hashlib.sha256(piece).hexdigest())
    return tuple(hashes)


@dataclass(frozen=True)
class Manifest:
    files: tuple[Entry, ...]

    def to_json(self) -> str:
        files = [
            {key: value for key, value in asdict(entry).items() if key != "blocks" or value}
            for entry in self.files
        ]
        document = {"brenda_manifest": MANIFEST_FORMAT, "files": files}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @property
    def name(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    @classmethod
    def from_json(cls, text: str, origin: str) -> Manifest:
        try:
            document = json.loads(text)
            if document.get("brenda_manifest") != MANIFEST_FORMAT:
                raise ValueError(f"format {document.get('brenda_manifest')}")
            entries = tuple(
                Entry(
                    str(item["path"]),
                    int(item["size"]),
                    str(item["hash"]),
                    int(item["mode"]),
                    tuple(str(block) for block in item.get("blocks", ())),
                )
                for item in document["files"]
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BrendaError(f"{origin} is not a Brenda project manifest ({error}).") from error
        for entry in entries:
            check_entry(entry, origin)
        check_paths(entries, origin)
        return cls(entries)


def pieces_where(
    entries: Iterable[Entry], wanted: Callable[[str], bool]
) -> dict[str, tuple[Entry, int]]:
    """Each ``wanted`` piece the entries are stored in (a whole file or a block), by its hash,
    once: with the first entry holding it and its index among that entry's pieces."""
    found: dict[str, tuple[Entry, int]] = {}
    for entry in entries:
        for index, digest in enumerate(entry.stored):
            if digest not in found and wanted(digest):
                found[digest] = (entry, index)
    return found


def _piece_size(entry: Entry, index: int) -> int:
    if not entry.blocks:
        return entry.size
    return min(BLOCK, entry.size - index * BLOCK)


RESERVED = frozenset({".brenda-version"})
"""Names at a project's top level that the node writes itself."""


def check_entry(entry: Entry, origin: str) -> None:
    path = PurePosixPath(entry.path)
    if (
        not path.parts
        or path.as_posix() != entry.path
        or path.is_absolute()
        or ".." in path.parts
        or "\\" in entry.path
        or "\0" in entry.path
    ):
        raise BrendaError(f"{origin} names '{entry.path}', which is not a path inside a project.")
    for digest in (entry.hash, *entry.blocks):
        if len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
            raise BrendaError(f"{origin} gives {entry.path} the hash '{digest}', not a SHA-256.")
    if entry.blocks and len(entry.blocks) != -(-entry.size // BLOCK):
        raise BrendaError(f"{origin} gives {entry.path} {len(entry.blocks)} blocks for its size.")
    if entry.size < 0 or entry.mode not in (0o644, 0o755):
        raise BrendaError(f"{origin} gives {entry.path} a size or mode Brenda does not write.")
    if entry.path in RESERVED:
        raise BrendaError(f"{origin} names {entry.path}, which the node writes itself.")


def check_paths(entries: Iterable[Entry], origin: str) -> None:
    """Refuse a manifest whose files cannot all be written as it says: a path given twice, or a
    file that another's path takes as a folder (``a`` and ``a/b``)."""
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        if entry.path in files:
            raise BrendaError(f"{origin} names {entry.path} twice.")
        files.add(entry.path)
        folders.update(parent.as_posix() for parent in PurePosixPath(entry.path).parents)
    clash = min(files & folders, default=None)
    if clash is not None:
        raise BrendaError(f"{origin} names {clash} both as a file and as a folder of files.")


class HashCache:
    """File hashes kept between runs, keyed by path, size, modification time and the inode's
    change time: tools that keep a file's modification time (``cp -p``, ``rsync -t``, unpacking
    an archive) cannot set the change time back, so a same-size edit is hashed again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._known: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._known = {}
        self.hashed = 0
        """Bytes hashed in this run (the rest came from the cache)."""

    def hash(self, path: Path, *, blocks: bool = False) -> tuple[str, tuple[str, ...]]:
        """The file's hash, and with ``blocks`` its blocks' hashes."""
        info = path.stat()
        key = str(path.resolve())
        with self._lock:
            known = self._known.get(key)
        stamp = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
        if (
            known is not None
            and known[:4] == stamp
            and (not blocks or (len(known) > 5 and bool(known[5])))
        ):
            return str(known[4]), tuple(known[5]) if blocks else ()
        digest = file_hash(path)
        pieces = block_hashes(path) if blocks else ()
        with self._lock:
            self._known[key] = [*stamp, digest, list(pieces)]
            self.hashed += info.st_size
        return digest, pieces

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with self._lock:
            partial.write_text(json.dumps(self._known), encoding="utf-8")
        partial.replace(self.path)


def default_hash_cache() -> HashCache:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return HashCache(base / "brenda" / "hashes.json")


def manifest_of(
    files: Iterable[tuple[str, Path, Path]], cache: HashCache, progress: Progress
) -> Manifest:
    """The manifest of ``files``: (path in the project, the file, the file whose bytes are the
    same and whose hash may be cached, such as the source a packer copied it from)."""
    listed = sorted(files)
    progress.start("Hashing", sum(path.stat().st_size for _, path, _ in listed))

    def entry(item: tuple[str, Path, Path]) -> Entry:
        name, path, same = item
        progress.check()
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise BrendaError(f"{path} is not a regular file: only files go into a project.")
        digest, blocks = cache.hash(same, blocks=is_blocked(name, info.st_size))
        progress.advance(info.st_size)
        mode = 0o755 if info.st_mode & 0o111 else 0o644
        return Entry(name, info.st_size, digest, mode, blocks)

    return Manifest(tuple(in_parallel(entry, listed, progress)))


def in_parallel(
    work: Callable[[Item], Done], items: Iterable[Item], progress: Progress
) -> list[Done]:
    """``work`` on every item, PARALLEL at once. An error, or Ctrl-C in the caller's thread,
    cancels ``progress``, so the rest stop at their next check instead of running on."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        try:
            return list(pool.map(work, items))
        except BaseException:
            progress.cancel()
            raise


def folder_files(folder: Path) -> Iterator[tuple[str, Path, Path]]:
    """Every file of a project folder, as ``manifest_of`` takes them."""
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise BrendaError(f"{path} is a link: a project holds files only.")
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path, path


@dataclass(frozen=True)
class Upload:
    manifest_url: str
    files: int
    bytes: int
    sent_files: int
    sent_bytes: int


class ContentStore:
    """The farm's content store and manifests under its projects prefix."""

    def __init__(self, client: Any, projects: S3Url) -> None:
        self.client = client
        self.projects = projects

    def key(self, digest: str) -> str:
        return self.projects.key(f"{CONTENT}{digest}")

    def version(self, manifest: Manifest) -> ProjectVersion:
        return ProjectVersion(self.projects, manifest.name)

    def pointer_key(self, pointer: str) -> str:
        return self.projects.key(f"{LATEST}{pointer}{POINTER_SUFFIX}")

    def read_manifest(self, version: ProjectVersion) -> Manifest | None:
        """The version's manifest, or None where the store does not hold it."""
        text = s3.read_text(self.client, self.projects.bucket, version.key)
        if text is None:
            return None
        if hashlib.sha256(text.encode()).hexdigest() != version.name:
            raise BrendaError(f"{version.url} is not the version its name says: its text differs.")
        return Manifest.from_json(text, version.url)

    def download(self, digest: str, path: Path) -> None:
        """The stored piece ``digest`` (a file or a block) to ``path``."""
        s3.download_file(self.client, self.projects.bucket, self.key(digest), path)

    def read_start(self, digest: str, size: int) -> bytes | None:
        """The first ``size`` bytes of the stored piece ``digest``; None where it is missing."""
        return s3.read_start(self.client, self.projects.bucket, self.key(digest), size)

    def missing(self, digests: Iterable[str], progress: Progress) -> set[str]:
        """The hashes the store lacks, or holds unchecked (a HEAD each, in parallel): a piece
        holds its hash as metadata once an upload checked the bytes it sent, so one sent
        before, and wrong, is sent again. A piece held from more than REUSE_MARK_AGE ago is
        marked as reused (its time made now), so that a ``gc`` running meanwhile keeps it;
        one ``gc`` removed in between counts as lacking."""
        wanted = sorted(set(digests))
        progress.start("Asking the store what it lacks", len(wanted))
        old = datetime.now(UTC) - REUSE_MARK_AGE

        def lacks(digest: str) -> bool:
            progress.check()
            key, checked = self.key(digest), {CHECKED: digest}
            info = s3.head(self.client, self.projects.bucket, key)
            if info is not None and info.metadata.get(CHECKED) != digest:
                info = None
            if info is not None and info.modified < old and info.size <= s3.COPY_LIMIT:
                info = s3.touch(self.client, self.projects.bucket, key, checked)
            progress.advance()
            return info is None

        with cloud_errors(f"reading the content store s3://{self.projects.bucket}"):
            gone = in_parallel(lacks, wanted, progress)
        return {digest for digest, lacked in zip(wanted, gone, strict=True) if lacked}

    def upload(
        self,
        manifest: Manifest,
        local: Callable[[Entry], Path],
        progress: Progress,
        *,
        pointer: str | None = None,
    ) -> Upload:
        """Send the files the store lacks (``local`` finds each one's bytes), then the manifest,
        then the ``pointer`` to it (see ``pointer_name``). An interrupted upload sent whole files
        only: run again, it sends the rest. A file whose bytes no longer hash as they did is
        not sent, nor left in the store: the upload fails naming it."""
        pieces = {digest for entry in manifest.files for digest in entry.stored}
        lacking = self.missing(pieces, progress)
        sending = pieces_where(manifest.files, lacking.__contains__)
        total = sum(_piece_size(entry, index) for entry, index in sending.values())
        progress.start(f"Uploading {len(sending)} files and blocks", total)
        bucket = self.projects.bucket

        def send(item: tuple[str, tuple[Entry, int]]) -> None:
            digest, (entry, index) = item
            path, key, checked = local(entry), self.key(digest), {CHECKED: digest}
            if not entry.blocks and entry.size > s3.MULTIPART_THRESHOLD:
                # Too big to hold: hashed again before and after it is sent in parts.
                if file_hash(path) != digest:
                    raise _changed(path)
                s3.upload_file(self.client, path, bucket, key, _Share(progress), metadata=checked)
                if file_hash(path) != digest:
                    self.client.delete_object(Bucket=bucket, Key=key)
                    raise _changed(path)
                return
            # What is sent is what was hashed: the piece is read once, hashed, then sent with
            # its SHA-256, which S3 checks on arrival.
            with path.open("rb") as source:
                source.seek(index * BLOCK)
                piece = source.read(BLOCK if entry.blocks else entry.size + 1)
            progress.check()
            if hashlib.sha256(piece).hexdigest() != digest:
                raise _changed(path)
            self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=piece,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
                Metadata=checked,
            )
            progress.advance(len(piece))

        version = self.version(manifest)
        url = version.url
        with cloud_errors(f"uploading to s3://{bucket}"):
            in_parallel(send, sending.items(), progress)
            s3.write_text(self.client, bucket, version.key, manifest.to_json())
            if pointer is not None:
                s3.write_text(self.client, bucket, self.pointer_key(pointer), url)
        sent_files = len({entry.path for entry, _ in sending.values()})
        return Upload(url, len(manifest.files), manifest.size, sent_files, total)

    def latest(self, pointer: str) -> str | None:
        """The manifest URL a project's pointer names, if it has one."""
        with cloud_errors(f"reading s3://{self.projects.bucket}"):
            text = s3.read_text(self.client, self.projects.bucket, self.pointer_key(pointer))
        return text.strip() if text else None


def _changed(path: Path) -> BrendaError:
    return BrendaError(f"{path} changed while it was uploaded: upload the project again.")


class _Share(Progress):
    """One file's transfer, counted into the whole upload's bytes and cancelled with it."""

    def __init__(self, whole: Progress) -> None:
        super().__init__(description=whole.description)
        self.whole = whole

    def start(self, description: str, total: int | None) -> None:
        self.whole.check()

    def advance(self, amount: int = 1) -> None:
        self.whole.advance(amount)

    def wait_for_cancel(self, timeout: float) -> bool:
        return self.whole.wait_for_cancel(timeout)

    @property
    def cancelled(self) -> bool:
        return self.whole.cancelled

    def check(self) -> None:
        self.whole.check()


@dataclass(frozen=True)
class Garbage:
    """What ``gc`` would remove: objects (key, size) no live manifest uses, and dead manifests."""

    content: list[tuple[str, int]]
    manifests: list[tuple[str, int]]
    kept_bytes: int
    listed: dict[str, datetime] = field(default_factory=dict)
    """Every manifest and piece as listed then, to its time: one written or reused since (an
    upload meanwhile) is not removed."""

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.content + self.manifests)


def find_garbage(store: ContentStore, *, days: int, live: Iterable[str], now: float) -> Garbage:
    """Content no manifest of the last ``days`` days uses, nor one a pointer or ``live`` (the
    URLs jobs render) names. Content younger than ``days`` stays too: an upload sends its files
    before its manifest."""

    client, bucket = store.client, store.projects.bucket
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=days)
    kept = {url.rsplit("/", 1)[-1] for url in live}
    with cloud_errors(f"listing the projects in s3://{bucket}"):
        for item in s3.list_objects(client, bucket, store.projects.prefix):
            name = item.key[len(store.projects.prefix) :]
            if name.endswith(POINTER_SUFFIX) and ("/" not in name or name.startswith(LATEST)):
                pointed = s3.read_text(client, bucket, item.key)
                if pointed:
                    kept.add(pointed.strip().rsplit("/", 1)[-1])
        manifests = list(s3.list_objects(client, bucket, store.projects.key(MANIFESTS)))
        listed = {item.key: item.modified for item in manifests}
        used: set[str] = set()
        dead = []
        for item in manifests:
            name = item.key.rsplit("/", 1)[-1]
            if item.modified >= cutoff or name in kept:
                used.update(_pieces_of(store, item.key))
            else:
                dead.append((item.key, item.size))
        content, kept_bytes = [], 0
        for item in s3.list_objects(client, bucket, store.projects.key(CONTENT)):
            listed[item.key] = item.modified
            if item.key.rsplit("/", 1)[-1] in used or item.modified >= cutoff:
                kept_bytes += item.size
            else:
                content.append((item.key, item.size))
    return Garbage(content, dead, kept_bytes, listed)


def _pieces_of(store: ContentStore, key: str) -> set[str]:
    text = s3.read_text(store.client, store.projects.bucket, key) or ""
    return {digest for entry in Manifest.from_json(text, key).files for digest in entry.stored}


def remove_garbage(store: ContentStore, garbage: Garbage) -> None:
    """Delete what ``find_garbage`` found, content first, 1,000 keys a request; but not what an
    upload since has written or reused: the manifests and pieces are listed again, and a piece
    a new or rewritten manifest uses, or one an upload marked as reused, stays."""
    client, bucket = store.client, store.projects.bucket
    changed: set[str] = set()
    with cloud_errors(f"listing the projects in s3://{bucket}"):
        for prefix in (MANIFESTS, CONTENT):
            for item in s3.list_objects(client, bucket, store.projects.key(prefix)):
                if garbage.listed.get(item.key) != item.modified:
                    changed.add(item.key)
        spared = {
            store.key(digest)
            for key in changed
            if key.startswith(store.projects.key(MANIFESTS))
            for digest in _pieces_of(store, key)
        }
    keys = [
        key
        for key, _ in garbage.content + garbage.manifests
        if key not in changed and key not in spared
    ]
    with cloud_errors(f"deleting from s3://{bucket}"):
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            store.client.delete_objects(Bucket=store.projects.bucket, Delete={"Objects": batch})


def send_project(
    store: ContentStore,
    files: list[tuple[str, Path, Path]],
    cache: HashCache,
    progress: Progress,
    *,
    pointer: str,
) -> Upload:
    """Hash a project's files (as ``manifest_of`` takes them) and send what the store lacks;
    ``pointer`` then names this version."""
    manifest = manifest_of(files, cache, progress)
    cache.save()
    local = {name: path for name, path, _ in files}
    return store.upload(manifest, lambda entry: local[entry.path], progress, pointer=pointer)
