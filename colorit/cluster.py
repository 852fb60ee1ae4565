"""`colorit colorize SRC... -o DST --ray [ADDRESS]`: whole archives on a Ray cluster.

SRC and DST are local folders or object-store URIs (s3://, gs://, ...: whatever pyarrow's
filesystems open, with credentials from the environment as for any other client). Ray Data streams
the files as bytes from read tasks to a pool of actors (one per CPU of each node), each
holding one ModelSession for its whole life; every file goes through colorit.batch.colorize_file,
exactly as in `colorit colorize` without --ray, so the outputs are the same bytes. Films are one Ray
task each (colorit.video.batch.colorize_film_file, as without --ray). Ray schedules; this module
only plans (lists, maps inputs to outputs, skips what exists) and writes atomically.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow.fs as pafs
import ray
import ray.data
import ray.exceptions

from colorit.batch import Settings, colorize_file, failure_line, output_name
from colorit.errors import ColoritError, ImageError, OutputError
from colorit.io import IMAGE_SUFFIXES, check_regular_file, cpu_count, images_below, write_bytes_atomic
from colorit.reaper import Reaper
from colorit.session import load_model
from colorit.video.formats import VIDEO_SUFFIXES, is_video

# What a --ray run picks up below SRC: photos and films.
SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES

# ONNX Runtime threads per actor. One session per CPU, as `--workers N` runs one process per CPU:
# an image is small work for the network, and separate sessions keep every core busy where one
# multi-threaded session waits on its slowest thread (measured in benchmarks/bench_ray.py).
THREADS_PER_ACTOR = 1
# Files per read task: a task for each file cost more in scheduling than the reading (111 against
# 53 ms per one-megapixel image here); a few per task keep the blocks small for large scans.
FILES_PER_READ = 4


class ArchiveError(ColoritError):
    """SRC or DST as a whole cannot be used (not found, not listable, mixed filesystems): nothing is done."""


@dataclass(frozen=True)
class Location:
    """A folder or file on some filesystem: `path` as the filesystem names it, `uri` as the user does."""

    filesystem: pafs.FileSystem
    path: str
    uri: str

    @classmethod
    def parse(cls, text: str) -> Location:
        try:
            if "://" in text:
                filesystem, path = pafs.FileSystem.from_uri(text)
                return cls(filesystem, path.rstrip("/"), text.rstrip("/"))
        except (OSError, ValueError) as exc:  # unknown scheme, bad URI, a filesystem pyarrow lacks
            raise ArchiveError(f"{text}: cannot open ({_first_line(exc)})") from None
        # realpath, not Path.resolve, which raises RuntimeError on a link loop before Python 3.13
        return cls(pafs.LocalFileSystem(), os.path.realpath(text), text)

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def child(self, relative: str) -> Location:
        return Location(
            self.filesystem,
            f"{self.path}/{relative}",
            str(Path(self.uri, relative)) if self.is_local else f"{self.uri}/{relative}",
        )


@dataclass(frozen=True)
class ArchiveJob:
    source: str  # path in the source filesystem, as Ray's reader reports it
    name: str  # the input as the user named it, for messages
    target: str  # path in the destination filesystem
    target_uri: str


@dataclass(frozen=True)
class Layout:
    """Where each input's output goes: below `output`, at its path relative to the SRC root it was
    found under (a root that is a file: its name), with the suffix of `fmt`."""

    roots: tuple[Location, ...]
    output: Location
    fmt: str | None

    def job(self, source: str) -> ArchiveJob:
        for root in self.roots:
            if source == root.path:
                return self._job(root, PurePosixPath(root.path).name)
            if source.startswith(root.path + "/"):
                relative = source[len(root.path) + 1 :]
                return self._job(root.child(relative), relative)
        raise ValueError(f"{source} lies below no SRC")

    def _job(self, source: Location, relative: str) -> ArchiveJob:
        target = self.output.child(str(output_name(PurePosixPath(relative), self.fmt)))
        return ArchiveJob(source.path, source.uri, target.path, target.uri)


@dataclass
class Archive:
    """What a --ray run will do: the jobs still to do, and what was skipped or failed while planning."""

    layout: Layout
    todo: list[ArchiveJob]
    skipped: int
    failures: int


def plan(
    sources: list[str], destination: str, fmt: str | None, overwrite: bool, report, verbose: bool = False
) -> Archive:
    """List every SRC recursively (hidden files and folders and DST itself left out), map each image
    to its output keeping the layout, and leave out outputs that exist (unless overwrite): nothing is
    read or decoded for those. Each input that cannot be done is reported in one line; with verbose,
    each one skipped too."""
    output = Location.parse(destination)
    roots = [Location.parse(text) for text in sources]
    if any(
        type(root.filesystem) is not type(roots[0].filesystem) or not root.filesystem.equals(roots[0].filesystem)
        for root in roots
    ):
        raise ArchiveError("all SRC must be on one filesystem (one bucket's store, or local folders)")
    same_filesystem = type(output.filesystem) is type(roots[0].filesystem) and output.filesystem.equals(
        roots[0].filesystem
    )
    layout = Layout(tuple(roots), output, fmt)
    jobs, failures = [], 0
    for root in roots:
        found, unusable = _inputs_below(root, output if same_filesystem else None, report)
        failures += unusable
        if found is None:
            report(f"colorit: {root.uri}: no such file or folder")
            failures += 1
            continue
        if not found and not unusable:
            raise ArchiveError(
                f"{root.uri}: no images or films in this folder (looked for {', '.join(sorted(SUFFIXES))})"
            )
        jobs += [layout.job(root.child(relative).path if relative else root.path) for relative in found]
    _check_destination(output)
    claimed: dict[str, str] = {}
    sources_seen = {job.source for job in jobs} if same_filesystem else set()
    existing = _files_below(output)
    todo, skipped = [], 0
    for job in jobs:
        if job.target in sources_seen:
            report(f"colorit: {job.name}: output {job.target_uri} would replace an input; choose another -o")
            failures += 1
        elif job.target in claimed:
            report(
                f"colorit: {job.name}: output {job.target_uri} is also the output of {claimed[job.target]}; use --format or colorize them separately"
            )
            failures += 1
        elif job.target in existing and not overwrite:
            claimed[job.target] = job.name
            if verbose:
                report(f"colorit: {job.name}: skipped, {job.target_uri} exists (use --overwrite to replace it)")
            skipped += 1
        else:
            claimed[job.target] = job.name
            todo.append(job)
    return Archive(layout, todo, skipped, failures)


def _inputs_below(root: Location, leave_out: Location | None, report) -> tuple[list[str] | None, int]:
    """Paths of the images and films below root relative to it, sorted ([""] when root is an image file
    itself), None when root does not exist; and how many entries cannot be read, each reported."""
    if root.is_local:
        return _local_inputs_below(root, leave_out, report)
    info = _info(root)
    if info.type == pafs.FileType.NotFound:
        return None, 0
    if info.type == pafs.FileType.File:
        return [""], 0
    found = []
    for entry in _listing(root):
        relative = PurePosixPath(entry.path).relative_to(root.path)
        if entry.type != pafs.FileType.File or relative.suffix.lower() not in SUFFIXES:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        if leave_out is not None and (entry.path + "/").startswith(leave_out.path + "/"):
            continue  # `-o photos/colorized` must not colorize its own results on the next run
        found.append(str(relative))
    return sorted(found), 0


def _local_inputs_below(root: Location, leave_out: Location | None, report) -> tuple[list[str] | None, int]:
    """_inputs_below for a local root, listed as `colorit colorize` without --ray lists it (pyarrow's
    listing follows links to folders, repeating a tree under a link to its parent, and drops link
    loops and FIFOs without a word). What is no regular file is reported here, in the words of the
    local runner, since a read task opening a FIFO would wait for a writer forever."""
    top = Path(root.path)
    if not (top.exists() or top.is_symlink()):
        return None, 0
    if not top.is_dir():
        relatives = [""]
        unreadable: list[OSError] = []
    else:
        found, unreadable = images_below(top, SUFFIXES, leave_out=Path(leave_out.path) if leave_out else None)
        relatives = [str(path.relative_to(top)) for path in found]
    for error in unreadable:
        folder = root.child(str(Path(str(error.filename)).relative_to(top)))
        report(f"colorit: {folder.uri}: cannot read folder ({error.strerror or error})")
    readable = []
    for relative in relatives:
        entry = root.child(relative) if relative else root
        try:
            check_regular_file(entry.path, entry.uri)
        except ImageError as error:
            report(failure_line(entry.uri, error))
            continue
        readable.append(relative)
    return readable, len(unreadable) + len(relatives) - len(readable)


def _files_below(folder: Location) -> set[str]:
    return {entry.path for entry in _listing(folder) if entry.type == pafs.FileType.File}


def _info(location: Location) -> pafs.FileInfo:
    try:
        return location.filesystem.get_file_info(location.path)
    except OSError as exc:
        raise ArchiveError(f"{location.uri}: cannot read ({_first_line(exc)})") from None


def _listing(folder: Location) -> list[pafs.FileInfo]:
    try:
        return folder.filesystem.get_file_info(pafs.FileSelector(folder.path, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise ArchiveError(f"{folder.uri}: cannot list ({_first_line(exc)})") from None


def _check_destination(output: Location) -> None:
    if output.is_local:
        try:
            Path(output.path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"{output.uri}: cannot create the output folder ({exc.strerror or exc})") from None
        return
    # In object stores folders are only key prefixes, but the bucket must exist.
    bucket = Location(output.filesystem, output.path.split("/")[0], output.uri)
    if _info(bucket).type == pafs.FileType.NotFound:
        raise ArchiveError(f"{output.uri}: no such bucket")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# ------------------------------------------------------------------------------------------ running


class _ObjectWriter:
    """Atomic writes to an object store: the bytes go to a hidden temporary key, then a server-side
    copy makes the output appear whole (as a local rename does); a failure at any point leaves at
    most the hidden temporary, which listing leaves out."""

    def __init__(self, output: Location, overwrite: bool):
        self.output = output
        self.filesystem = output.filesystem
        self.overwrite = overwrite

    def __call__(self, target: str, data: bytes) -> None:
        """Write data to target, a path below the output folder."""
        self.store(target, lambda stream: stream.write(data))

    def store(self, target: str, fill: Callable[[pafs.NativeFile], object]) -> None:
        """Write target, a path below the output folder, with fill(the output stream)."""
        uri = self.output.uri + target[len(self.output.path) :]
        if not self.overwrite and self.filesystem.get_file_info(target).type != pafs.FileType.NotFound:
            raise OutputError(f"{uri}: already exists (use --overwrite to replace it)")
        folder, _, name = target.rpartition("/")
        temporary = f"{folder}/.{name}.{secrets.token_hex(4)}.colorit-tmp"
        try:
            with self.filesystem.open_output_stream(temporary) as stream:
                fill(stream)
            self.filesystem.move(temporary, target)
        except BaseException as exc:  # also an interrupted actor: never leave the temporary behind
            try:
                self.filesystem.delete_file(temporary)
            except OSError:
                pass  # never written, or the store is unreachable: the hidden key is all that is left
            if isinstance(exc, OSError):
                raise OutputError(f"{uri}: cannot write ({_first_line(exc)})") from None
            raise


class _Colorizer:
    """A Ray actor: one ModelSession loaded once, then batches of files (bytes and path) in, one
    failure line (or "") per file out."""

    def __init__(self, layout: Layout, settings: Settings):
        self.layout = layout
        self.settings = settings
        self.session = load_model(settings.model, threads=settings.threads, device=settings.device)
        output = layout.output
        self.object_writer = None if output.is_local else _ObjectWriter(output, settings.overwrite)

    def _writer(self, job: ArchiveJob):
        if self.object_writer is not None:
            return self.object_writer
        protected = [job.source] if self.layout.roots[0].is_local else []
        return partial(write_bytes_atomic, overwrite=self.settings.overwrite, protected=protected)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        failures = []
        for path, data, error in zip(batch["path"], batch["bytes"], batch["error"]):
            job = self.layout.job(path)
            if error:
                failures.append(f"colorit: {job.name}: cannot open ({error})")
                continue
            failure = colorize_file(data, job.name, job.target, self.settings, self._writer(job), self.session)
            failures.append(failure or "")
        return {"failure": np.array(failures, dtype=object)}


def _colorize_film(job: ArchiveJob, layout: Layout, settings: Settings) -> str:
    """A Ray task: one film; "" or its failure line. PyAV reads and writes local files, so a film in
    an object store is copied to a local temporary folder first, and its output made there and
    uploaded (through _ObjectWriter: whole or not at all)."""
    from colorit.video.batch import colorize_film_file

    root, output = layout.roots[0], layout.output
    with tempfile.TemporaryDirectory(prefix="colorit-film-") as folder:
        source = Path(job.source) if root.is_local else Path(folder, "input" + PurePosixPath(job.source).suffix)
        target = Path(job.target) if output.is_local else Path(folder, "output" + PurePosixPath(job.target).suffix)
        try:
            if not root.is_local:
                pafs.copy_files(job.source, str(source), root.filesystem, pafs.LocalFileSystem())
            failure = colorize_film_file(source, job.name, target, settings)
            if failure is None and not output.is_local:
                with target.open("rb") as made:
                    _ObjectWriter(output, settings.overwrite).store(job.target, partial(shutil.copyfileobj, made))
        except OSError as exc:
            return f"colorit: {job.name}: cannot open ({_first_line(exc)})"
        except ColoritError as exc:
            return failure_line(job.name, exc)
    return failure or ""


def _read_files(batch: dict[str, np.ndarray], filesystem: pafs.FileSystem) -> dict[str, np.ndarray]:
    """A Ray task: each file's bytes, or why it could not be read."""
    contents, errors = [], []
    for path in batch["path"]:
        try:
            with filesystem.open_input_stream(path) as stream:
                contents.append(stream.read())
            errors.append("")
        except OSError as exc:
            contents.append(b"")
            errors.append(_first_line(exc))
    return {"path": batch["path"], "bytes": np.array(contents, dtype=object), "error": np.array(errors, dtype=object)}


def colorize_on_ray(archive: Archive, settings: Settings, address: str | None):
    """Connect to the Ray cluster at address (None: start a local instance with this machine's CPUs),
    then colorize archive.todo there; an iterator of None or a failure line per file, as the local
    runners give."""
    if not archive.todo:
        return iter(())
    # Ray Data ships every actor's constructor through the object store, and Ray's C++ core then
    # logs an alarming error-level notice for each restartable actor on this terminal; keep that
    # for the progress bar and the failure lines (real errors still arrive as Python exceptions).
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    # The local instance is ours to end, also if this process is killed outright (colorit.reaper).
    reaper = None if address else Reaper()
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(
                address="local",
                num_cpus=cpu_count(),
                log_to_driver=False,
                logging_level=logging.ERROR,
                include_dashboard=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ArchiveError(f"--ray {address or ''}: cannot start or join Ray ({_first_line(exc)})") from None
    if reaper:
        reaper.watch_descendants()
    return _results(archive, settings, reaper)


def _results(archive: Archive, settings: Settings, reaper: Reaper | None):
    films = [job for job in archive.todo if is_video(PurePosixPath(job.source))]
    photos = [job for job in archive.todo if not is_video(PurePosixPath(job.source))]
    try:
        if photos:
            yield from _photo_results(photos, archive.layout, settings)
        # One task per film, a CPU each (the film's decoding and encoding run beside its network).
        colorize_film = ray.remote(num_cpus=1)(_colorize_film)
        pending = [colorize_film.remote(job, archive.layout, settings) for job in films]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0]) or None
    except ray.exceptions.RayError as exc:  # the cluster failed (lost nodes, actors that kept dying)
        raise ArchiveError(f"the Ray job stopped ({_first_line(exc)}); a rerun does what is left") from None
    finally:
        ray.shutdown()
        if reaper:
            reaper.release()


def _photo_results(photos: list[ArchiveJob], layout: Layout, settings: Settings):
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the CLI shows its own, in images/s
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    actors, actor_cpus = _pool_size()
    # Ray tasks read the files (Ray Data's own reader would stop the whole job at the first file
    # it cannot read); the actors only colorize.
    read = partial(_read_files, filesystem=layout.roots[0].filesystem)
    files = ray.data.from_items([{"path": job.source} for job in photos]).map_batches(read, batch_size=FILES_PER_READ)
    results = files.map_batches(
        _Colorizer,
        # the layout, not a table of every job, travels to the actors: small for any archive
        fn_constructor_kwargs={"layout": layout, "settings": settings},
        batch_size=1,  # one file at a time: progress moves per image, and memory stays one image deep
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(photos))),
        num_cpus=actor_cpus,
    )
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for failure in batch["failure"]:
            yield failure or None


def _pool_size() -> tuple[int, float]:
    """(actors, CPUs each) for the cluster as it is: one actor per CPU of each node, together
    holding all but one CPU of it, which is left for Ray's read tasks (actors holding every CPU,
    as two whole-CPU actors on a 2-CPU machine do, leave no read able to start)."""
    nodes = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node["Alive"]]
    nodes = [cpus for cpus in nodes if cpus >= 2] or [2]
    smallest = min(nodes)
    return sum(nodes), (smallest - 1) / smallest
