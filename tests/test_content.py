# SPDX-License-Identifier: GPL-3.0-or-later
"""Content-addressed projects against moto's server: uploads send only what the store lacks
(and resume), projects share files, nodes fetch only what changed and refuse corrupt bytes."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from moto.iam.access_control import S3IAMRequest

from brenda_node.project import ProjectError, fetch_url
from shared.cli.brenda import main as brenda
from shared.cli.work import live_versions
from shared.cli.work import main as brenda_work
from shared.core.config import load_config
from shared.core.errors import BrendaError, Cancelled
from shared.core.progress import Progress
from shared.core.urls import S3Url, parse_url
from shared.project import content
from shared.project.content import (
    ContentStore,
    HashCache,
    Manifest,
    ProjectVersion,
    find_garbage,
    folder_files,
    manifest_of,
    pointer_name,
    remove_garbage,
)

PROJECTS = S3Url("studio", "projects/")


def make_project(folder: Path, files: int = 20, seed: int = 0) -> Path:
    (folder / "textures").mkdir(parents=True)
    (folder / "scene.blend").write_bytes(b"BLENDER" + bytes([seed]) * 5000)
    for number in range(files):
        (folder / "textures" / f"t{number}.png").write_bytes(os.urandom(1000 + number))
    return folder


@pytest.fixture
def store(aws: str, boto_client: Any) -> ContentStore:
    client = boto_client("s3")
    client.create_bucket(Bucket="studio")
    return ContentStore(client, PROJECTS)


def upload(
    store: ContentStore,
    folder: Path,
    cache: HashCache,
    progress: Progress | None = None,
    *,
    pointer: str | None = None,
) -> Any:
    files = list(folder_files(folder))
    manifest = manifest_of(files, cache, Progress())
    local = {name: path for name, path, _ in files}
    return store.upload(
        manifest,
        lambda entry: local[entry.path],
        progress or Progress(),
        pointer=pointer or pointer_name(folder.name),
    )


def stored(boto_client: Any) -> list[str]:
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix="projects/content/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_re_upload_sends_only_the_changed_file_and_hashes_only_it(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    project = make_project(tmp_path / "shot1")
    cache = HashCache(tmp_path / "hashes.json")
    first = upload(store, project, cache)
    assert (first.sent_files, first.files) == (21, 21)
    assert first.sent_bytes == first.bytes
    cache.save()

    again = HashCache(tmp_path / "hashes.json")
    unchanged = upload(store, project, again)
    assert (unchanged.sent_files, unchanged.sent_bytes, again.hashed) == (0, 0, 0)
    assert unchanged.manifest_url == first.manifest_url  # the same version, by content

    (project / "textures" / "t3.png").write_bytes(os.urandom(1_000_000))
    changed = upload(store, project, again)
    assert (changed.sent_files, changed.sent_bytes) == (1, 1_000_000)
    assert again.hashed == 1_000_000
    assert changed.manifest_url != first.manifest_url
    assert len(stored(boto_client)) == 22
    assert store.latest("shot1") == changed.manifest_url


def test_a_same_size_edit_that_kept_its_modification_time_is_hashed_and_sent_again(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    """As ``cp -p``, ``rsync -t`` or an unpacked archive leave a file: the cache is keyed on the
    inode change time too, which no tool sets back."""
    project = make_project(tmp_path / "shot1", files=2)
    cache = HashCache(tmp_path / "hashes.json")
    first = upload(store, project, cache)
    texture = project / "textures" / "t1.png"
    before = texture.stat()
    texture.write_bytes(os.urandom(before.st_size))
    os.utime(texture, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (texture.stat().st_size, texture.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    changed = upload(store, project, cache)
    assert (changed.sent_files, changed.sent_bytes) == (1, before.st_size)
    assert changed.manifest_url != first.manifest_url


def test_two_projects_sharing_textures_store_them_once(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    one = make_project(tmp_path / "one", files=5)
    two = tmp_path / "two"
    two.mkdir()
    (two / "textures").mkdir()
    for name in ("t0.png", "t1.png"):
        (two / "textures" / name).write_bytes((one / "textures" / name).read_bytes())
    (two / "scene.blend").write_bytes(b"another scene")
    cache = HashCache(tmp_path / "hashes.json")
    upload(store, one, cache)
    second = upload(store, two, cache)
    assert (second.sent_files, second.files) == (1, 3)
    assert len(stored(boto_client)) == 7


def test_an_interrupted_upload_resumes_with_what_did_not_arrive(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    project = make_project(tmp_path / "shot1", files=30)
    cache = HashCache(tmp_path / "hashes.json")

    def cancel_midway(progress: Progress) -> None:
        if progress.description.startswith("Uploading") and progress.done > 8000:
            progress.cancel()

    with pytest.raises(Cancelled):
        upload(store, project, cache, Progress(on_change=cancel_midway))
    arrived = len(stored(boto_client))
    assert 0 < arrived < 31
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix="projects/manifests/")
    assert "Contents" not in listing  # no manifest names files that may not be there
    resumed = upload(store, project, cache)
    assert resumed.sent_files == 31 - arrived
    assert len(stored(boto_client)) == 31


def node_config(tmp_path: Path) -> Any:
    environ = {
        **os.environ,
        "BRENDA_WORK_DIR": str(tmp_path / "node"),
        "BRENDA_FARM_PROJECTS": str(PROJECTS),
    }
    return load_config(environ=environ)


def test_a_node_fetches_only_what_a_new_version_changed_and_links_the_rest(
    store: ContentStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path / "shot1")
    cache = HashCache(tmp_path / "hashes.json")
    first = upload(store, project, cache)
    config, work = node_config(tmp_path), tmp_path / "node" / "job"
    work.mkdir(parents=True)
    caplog.set_level(logging.INFO)
    built = fetch_url(parse_url(first.manifest_url), config, work)
    assert "21 of 21 files fetched" in caplog.text
    assert (built / "textures" / "t5.png").read_bytes() == (
        project / "textures" / "t5.png"
    ).read_bytes()
    assert (built / "scene.blend").stat().st_mode & 0o222 == 0  # read-only: the cache is shared

    (project / "scene.blend").write_bytes(b"BLENDER edited")
    second = upload(store, project, cache)
    caplog.clear()
    rebuilt = fetch_url(parse_url(second.manifest_url), config, work)
    assert "1 of 21 files fetched (14 bytes)" in caplog.text
    assert (rebuilt / "scene.blend").read_bytes() == b"BLENDER edited"
    caplog.clear()
    assert fetch_url(parse_url(second.manifest_url), config, work) == rebuilt
    assert "already built" in caplog.text


def test_a_corrupt_object_in_the_store_is_refused_with_the_file_named(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    project = make_project(tmp_path / "shot1", files=2)
    sent = upload(store, project, HashCache(tmp_path / "hashes.json"))
    text = boto_client("s3").get_object(Bucket="studio", Key=sent.manifest_url.split("/", 3)[3])
    manifest = Manifest.from_json(text["Body"].read().decode(), "test")
    blend = next(entry for entry in manifest.files if entry.path == "scene.blend")
    boto_client("s3").put_object(
        Bucket="studio", Key=f"projects/content/{blend.hash}", Body=b"evil"
    )
    work = tmp_path / "node" / "job"
    work.mkdir(parents=True)
    with pytest.raises(ProjectError, match=r"The store's copy of scene\.blend .* is corrupt"):
        fetch_url(parse_url(sent.manifest_url), node_config(tmp_path), work)
    assert not (work / "project").exists()


def test_a_manifest_naming_a_path_outside_the_project_is_refused() -> None:
    text = (
        '{"brenda_manifest":1,"files":[{"path":"../x","size":1,"hash":"'
        + "0" * 64
        + '","mode":420}]}'
    )
    with pytest.raises(Exception, match=r"names '\.\./x', which is not a path inside a project"):
        Manifest.from_json(text, "s3://studio/projects/manifests/a.json")


@pytest.mark.parametrize(
    ("paths", "refusal"),
    [
        (["scene.blend", "scene.blend"], "names scene.blend twice"),
        (["shots", "shots/scene.blend"], "names shots both as a file and as a folder of files"),
        ([".brenda-version"], "names .brenda-version, which the node writes itself"),
        (["shots//scene.blend"], "names 'shots//scene.blend', which is not a path inside"),
        (["./scene.blend"], "names './scene.blend', which is not a path inside"),
        (["."], "names '.', which is not a path inside"),
    ],
    ids=["twice", "file and folder", "reserved", "double slash", "dot", "the root"],
)
def test_a_manifest_whose_files_cannot_all_be_written_as_it_says_is_refused(
    paths: list[str], refusal: str
) -> None:
    files = [{"path": path, "size": 1, "hash": "0" * 64, "mode": 0o644} for path in paths]
    text = json.dumps({"brenda_manifest": 1, "files": files})
    with pytest.raises(BrendaError, match=re.escape(refusal)):
        Manifest.from_json(text, "s3://studio/projects/manifests/a.json")


def test_a_project_whose_top_level_holds_one_folder_keeps_its_root_when_built_again(
    store: ContentStore, tmp_path: Path
) -> None:
    project = tmp_path / "shot1"
    (project / "shots").mkdir(parents=True)
    (project / "shots" / "scene.blend").write_bytes(b"BLENDER scene")
    sent = upload(store, project, HashCache(tmp_path / "hashes.json"))
    config, work = node_config(tmp_path), tmp_path / "node" / "job"
    work.mkdir(parents=True)
    built = fetch_url(parse_url(sent.manifest_url), config, work)
    assert (built / "shots" / "scene.blend").read_bytes() == b"BLENDER scene"
    assert fetch_url(parse_url(sent.manifest_url), config, work) == built  # the next job's


def test_a_node_takes_project_versions_from_the_farms_projects_only(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    sent = upload(store, make_project(tmp_path / "shot1", files=1), HashCache(tmp_path / "h"))
    s3 = boto_client("s3")
    key = sent.manifest_url.split("/", 3)[3]
    text = s3.get_object(Bucket="studio", Key=key)["Body"].read()
    s3.put_object(Bucket="studio", Key=key.replace("projects/", "frames/"), Body=text)
    elsewhere = sent.manifest_url.replace("/projects/", "/frames/")
    work = tmp_path / "node" / "job"
    work.mkdir(parents=True)
    with pytest.raises(ProjectError, match=r"is not under the farm's projects \(FARM_PROJECTS="):
        fetch_url(parse_url(elsewhere), node_config(tmp_path), work)
    environ = {**os.environ, "BRENDA_WORK_DIR": str(tmp_path / "node")}
    outputs_inside = {
        **environ,
        "BRENDA_FARM_PROJECTS": "s3://studio/",
        "BRENDA_FARM_OUTPUTS": "s3://studio/frames/",
    }
    with pytest.raises(ProjectError, match=r"is under the farm's outputs \(FARM_OUTPUTS="):
        fetch_url(parse_url(elsewhere), load_config(environ=outputs_inside), work)
    with pytest.raises(ProjectError, match=r"\(FARM_PROJECTS=unset\)"):
        fetch_url(parse_url(sent.manifest_url), load_config(environ=environ), work)
    # A node's own BLENDER_PROJECT is its operator's word, not a job's.
    own = {**environ, "BRENDA_BLENDER_PROJECT": sent.manifest_url}
    assert fetch_url(parse_url(sent.manifest_url), load_config(environ=own), work).is_dir()
    # A manifest whose text is not what its name hashes is not that version.
    s3.put_object(Bucket="studio", Key=key, Body=text.replace(b'"mode":420', b'"mode":493', 1))
    with pytest.raises(BrendaError, match="is not the version its name says"):
        fetch_url(parse_url(sent.manifest_url), node_config(tmp_path), tmp_path / "node")


def test_brenda_upload_says_what_it_sent_against_the_projects_size(
    store: ContentStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = make_project(tmp_path / "shot1", files=3)
    assert brenda(["upload", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Sent 4 of 4 files" in out and "Project version: s3://studio/projects/manifests/" in out
    assert f"Project version: {store.latest('shot1')}\n" in out
    assert brenda(["upload", str(project)]) == 0
    assert "Sent 0 of 4 files, 0 bytes of 8.0 KB (hashed 0 bytes;" in capsys.readouterr().out


def test_gc_keeps_what_live_manifests_use_and_removes_the_rest_only_when_told(
    store: ContentStore,
    tmp_path: Path,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    project = make_project(tmp_path / "shot1", files=3)
    cache = HashCache(tmp_path / "hashes.json")
    old = upload(store, project, cache)
    (project / "textures" / "t0.png").write_bytes(b"new texture")
    new = upload(store, project, cache)
    forgotten = upload(store, make_project(tmp_path / "other", files=1, seed=7), cache)
    s3 = boto_client("s3")
    s3.delete_object(Bucket="studio", Key="projects/latest/other.manifest")  # no one's latest
    # Pretend the first two versions were uploaded long ago; "shot1"'s pointer names the newest.
    later = time.time() + 40 * 86400
    garbage = find_garbage(store, days=30, live=[], now=later)
    removed = {key.rsplit("/", 1)[-1] for key, _ in garbage.content}
    old_only = {e.hash for e in manifest(s3, old)} - {e.hash for e in manifest(s3, new)}
    other_only = {e.hash for e in manifest(s3, forgotten)} - {e.hash for e in manifest(s3, new)}
    assert removed == old_only | other_only
    assert {key.rsplit("/", 1)[-1] for key, _ in garbage.manifests} == {
        url.rsplit("/", 1)[-1] for url in (old.manifest_url, forgotten.manifest_url)
    }
    # A job still rendering the forgotten project keeps it.
    kept = find_garbage(store, days=30, live=[forgotten.manifest_url], now=later)
    assert {key.rsplit("/", 1)[-1] for key, _ in kept.content} == old_only

    # Today nothing is old enough to go; a dry run deletes nothing.
    assert brenda_work(["gc"]) == 0
    assert capsys.readouterr().out.startswith(
        "gc would remove 0 stored files and 0 project versions"
    )
    before = len(stored(boto_client))
    remove_garbage(store, garbage)
    assert len(stored(boto_client)) == before - len(garbage.content)
    (tmp_path / "node").mkdir()
    assert fetch_url(parse_url(new.manifest_url), node_config(tmp_path), tmp_path / "node")


def manifest(s3: Any, sent: Any) -> tuple[Any, ...]:
    body = s3.get_object(Bucket="studio", Key=sent.manifest_url.split("/", 3)[3])["Body"].read()
    return Manifest.from_json(body.decode(), "test").files


def test_a_value_edit_of_a_big_blend_sends_and_fetches_one_block(
    store: ContentStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "shot1"
    project.mkdir()
    blend = project / "shot.blend"
    blend.write_bytes(os.urandom(12 << 20))  # three 4 MiB blocks
    cache = HashCache(tmp_path / "hashes.json")
    first = upload(store, project, cache)
    assert (first.sent_files, first.sent_bytes) == (1, 12 << 20)
    config, work = node_config(tmp_path), tmp_path / "node" / "job"
    work.mkdir(parents=True)
    fetch_url(parse_url(first.manifest_url), config, work)

    with blend.open("r+b") as file:  # what Blender does when a value changes: bytes in place
        file.seek(5 << 20)
        file.write(b"edited")
    second = upload(store, project, cache)
    assert (second.sent_files, second.sent_bytes) == (1, 4 << 20)
    caplog.set_level(logging.INFO)
    rebuilt = fetch_url(parse_url(second.manifest_url), config, work)
    assert f"1 of 1 file fetched ({4 << 20} bytes)" in caplog.text
    assert (rebuilt / "shot.blend").read_bytes() == blend.read_bytes()


def test_two_projects_each_with_a_main_blend_keep_their_own_latest_version(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    cache = HashCache(tmp_path / "hashes.json")
    sent = {}
    for project, seed in (("film", 1), ("advert", 2)):
        folder = make_project(tmp_path / project, files=1, seed=seed)
        (folder / "scene.blend").rename(folder / "main.blend")
        sent[project] = upload(store, folder, cache, pointer=pointer_name(project, "main.blend"))
    assert sent["film"].manifest_url != sent["advert"].manifest_url
    assert store.latest(pointer_name("film", "main.blend")) == sent["film"].manifest_url
    assert store.latest(pointer_name("advert", "main.blend")) == sent["advert"].manifest_url
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix="projects/latest/")
    assert sorted(item["Key"] for item in listing["Contents"]) == [
        "projects/latest/advert/main.blend.manifest",
        "projects/latest/film/main.blend.manifest",
    ]
    with pytest.raises(BrendaError, match="cannot name a project"):
        pointer_name("", "main.blend")


def test_gc_keeps_what_a_pointer_written_before_names(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    cache = HashCache(tmp_path / "hashes.json")
    old = upload(store, make_project(tmp_path / "shot1", files=1), cache)
    s3 = boto_client("s3")
    s3.delete_object(Bucket="studio", Key="projects/latest/shot1.manifest")
    s3.put_object(Bucket="studio", Key="projects/shot1.manifest", Body=old.manifest_url.encode())
    garbage = find_garbage(store, days=30, live=[], now=time.time() + 40 * 86400)
    assert (garbage.content, garbage.manifests) == ([], [])
    s3.delete_object(Bucket="studio", Key="projects/shot1.manifest")
    garbage = find_garbage(store, days=30, live=[], now=time.time() + 40 * 86400)
    assert len(garbage.manifests) == 1


def test_gc_keeps_a_version_uploaded_again_between_its_listing_and_its_deletes(
    store: ContentStore, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "shot1", files=3)
    texture = project / "textures" / "t0.png"
    original = texture.read_bytes()
    cache = HashCache(tmp_path / "hashes.json")
    old = upload(store, project, cache)
    texture.write_bytes(b"new texture")
    upload(store, project, cache)
    garbage = find_garbage(store, days=30, live=[], now=time.time() + 40 * 86400)
    assert [key.rsplit("/", 1)[-1] for key, _ in garbage.manifests] == [
        old.manifest_url.rsplit("/", 1)[-1]
    ]
    assert len(garbage.content) == 1  # the old texture, which only the old version uses
    time.sleep(1.1)  # the store's times are whole seconds: the upload below is a later one
    texture.write_bytes(original)
    again = upload(store, project, cache)
    assert again.manifest_url == old.manifest_url and again.sent_files == 0  # all reused
    remove_garbage(store, garbage)
    work = tmp_path / "node" / "job"
    work.mkdir(parents=True)
    built = fetch_url(parse_url(old.manifest_url), node_config(tmp_path), work)
    assert (built / "textures" / "t0.png").read_bytes() == original


def test_gc_marks_reused_pieces_so_a_gc_running_meanwhile_keeps_them(
    store: ContentStore, tmp_path: Path, boto_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "shot1", files=2)
    cache = HashCache(tmp_path / "hashes.json")
    first = upload(store, project, cache)
    boto_client("s3").delete_object(Bucket="studio", Key=first.manifest_url.split("/", 3)[3])
    boto_client("s3").delete_object(Bucket="studio", Key="projects/latest/shot1.manifest")
    garbage = find_garbage(store, days=30, live=[], now=time.time() + 40 * 86400)
    assert len(garbage.content) == 3  # no manifest uses them any more
    time.sleep(1.1)
    # An upload that began before gc's deletes and writes its manifest after them: it found
    # every piece in the store, and marked the old ones as reused.
    monkeypatch.setattr(content, "REUSE_MARK_AGE", timedelta(0))
    files = list(folder_files(project))
    lacking = store.missing(
        {e.hash for e in manifest_of(files, cache, Progress()).files}, Progress()
    )
    assert lacking == set()
    remove_garbage(store, garbage)
    assert len(stored(boto_client)) == 3


def test_gc_counts_a_job_record_it_cannot_read_as_live(
    store: ContentStore, tmp_path: Path, boto_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRENDA_FARM", "studio")
    monkeypatch.setenv("BRENDA_FARM_OUTPUTS", "s3://studio/frames/")
    old = upload(store, make_project(tmp_path / "shot1", files=1), HashCache(tmp_path / "h"))
    boto_client("s3").delete_object(Bucket="studio", Key="projects/latest/shot1.manifest")
    record = '{"id": "shot1-20261125-203600-1a2b", "project": "' + old.manifest_url + '", "fr'
    boto_client("s3").put_object(
        Bucket="studio", Key="frames/.brenda/jobs/shot1-20261125-203600-1a2b.json", Body=record
    )
    live = live_versions(load_config(environ=dict(os.environ)))
    garbage = find_garbage(store, days=30, live=live, now=time.time() + 40 * 86400)
    assert (garbage.content, garbage.manifests) == ([], [])


def test_a_wrong_piece_in_the_store_is_sent_again_by_the_next_upload(
    store: ContentStore, tmp_path: Path, boto_client: Any
) -> None:
    project = make_project(tmp_path / "shot1", files=2)
    (project / "smoke.vdb").write_bytes(os.urandom(9 << 20))  # sent in parts
    cache = HashCache(tmp_path / "hashes.json")
    sent = upload(store, project, cache)
    assert upload(store, project, cache).sent_files == 0
    blend = next(
        entry for entry in manifest(boto_client("s3"), sent) if entry.path == "scene.blend"
    )
    # What an upload of a file that changed while it was sent stored before.
    boto_client("s3").put_object(
        Bucket="studio", Key=f"projects/content/{blend.hash}", Body=b"BLENDER changed meanwhile"
    )
    config = node_config(tmp_path)
    work = tmp_path / "node" / "job"
    work.mkdir(parents=True)
    with pytest.raises(ProjectError, match=r"scene\.blend .* is corrupt"):
        fetch_url(parse_url(sent.manifest_url), config, work)
    repaired = upload(store, project, cache)
    assert (repaired.sent_files, repaired.sent_bytes) == (1, blend.size)
    built = fetch_url(parse_url(sent.manifest_url), config, work)
    assert (built / "scene.blend").read_bytes() == (project / "scene.blend").read_bytes()


@pytest.mark.parametrize("size", [5000, 9 << 20], ids=["whole", "in parts"])
def test_a_file_changed_after_it_was_hashed_is_not_stored(
    store: ContentStore, tmp_path: Path, boto_client: Any, size: int
) -> None:
    project = tmp_path / "shot1"
    project.mkdir()
    (project / "cache.abc").write_bytes(os.urandom(size))
    files = list(folder_files(project))
    hashed = manifest_of(files, HashCache(tmp_path / "hashes.json"), Progress())
    (project / "cache.abc").write_bytes(os.urandom(size))  # the simulation wrote it again
    with pytest.raises(BrendaError, match=r"cache\.abc changed while it was uploaded"):
        store.upload(hashed, lambda entry: project / entry.path, Progress())
    assert stored(boto_client) == []


@pytest.mark.parametrize("projects", [".projects/", "farm/.projects/", ""])
def test_a_version_keeps_its_store_whose_folder_name_starts_with_a_dot(projects: str) -> None:
    """An earlier lstrip("./") took the dot of ".projects/" off with the "./" of the top level."""
    version = ProjectVersion.at(S3Url("studio", f"{projects}manifests/{'a' * 64}.json"))
    assert version is not None
    assert version.projects == S3Url("studio", projects)
    assert version.url == f"s3://studio/{projects}manifests/{'a' * 64}.json"


def test_brenda_upload_names_the_fix_for_a_bucket_it_may_not_use(
    aws: str,
    boto_client: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bucket of FARM_PROJECTS is another account's, as far as these credentials can tell:
    moto enforces IAM for a user who may not touch it."""
    monkeypatch.setattr(S3IAMRequest, "check_signature", lambda _request: None)  # moto 5948
    boto_client("s3").create_bucket(Bucket="theirs")
    iam = boto_client("iam")
    iam.create_user(UserName="artist")
    key = iam.create_access_key(UserName="artist")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://theirs/projects/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = make_project(tmp_path / "shot1", files=1)
    requests.post(f"{aws}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        assert brenda(["upload", str(project)]) == 1
    finally:
        requests.post(f"{aws}/moto-api/reset-auth", data=b"inf", timeout=10)
    assert capsys.readouterr().err == (
        "brenda: These AWS credentials may not use the bucket s3://theirs: if another AWS account "
        "owns it (bucket names are shared by all of AWS), name another one; else let them use it "
        "(s3:ListBucket) and make it (s3:CreateBucket).\n"
    )


def test_an_unchanged_blend_is_not_hashed_again_unless_packing_rewrote_it(
    store: ContentStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its packed copy is the .blend's own bytes when BAT rewrites no path in it."""
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    blend = tmp_path / "shot1" / "shot1.blend"
    blend.parent.mkdir()
    save = f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"
    subprocess.run([sys.executable, "-c", save], check=True, capture_output=True, timeout=120)
    hashed = []
    for _ in range(2):
        assert brenda(["upload", str(blend)]) == 0
        found = re.search(r"\(hashed ([^;]+);", capsys.readouterr().out)
        assert found
        hashed.append(found.group(1))
    assert hashed[0] != hashed[1]
    assert hashed[1].endswith(" bytes")  # BAT's pack-info.txt alone: a new file each time
