"""Content-addressed file store and bounded staging of imported files (folders and zips).

Layout under the store root (``--store``, else ``$LUTARTERIAL_STORE``, else ``<data dir>/store``)::

    sha256/ab/abcdef...       one file per distinct content, named by its SHA-256; never overwritten
    tmp/                      staging area (same file system, so moving a file in is atomic)

Why content-addressed: a re-import of identical files writes nothing; a file cannot be
changed in place without its name (digest) changing; and analyses name their inputs by digest.

Zip bombs are refused **without filling the disk**: the declared sizes, the member count and the
compression ratio are checked before anything is extracted, and each member is streamed with a
byte counter that stops at the declared size and at the limits (declared sizes can lie).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lutarterial.errors import InvalidInputError, NotFoundError

__all__ = ["ImportLimits", "ContentStore", "StagedFile", "store_root", "stage_paths", "stage_zip"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImportLimits:
    """Bounds of one import. Environment: ``LUTARTERIAL_IMPORT_MAX_FILES``, ``..._MAX_BYTES``,
    ``..._MAX_FILE_BYTES``, ``..._MAX_RATIO`` (zip: uncompressed/compressed size per member)."""

    max_files: int = 20000
    max_total_bytes: int = 8 * 1024**3
    max_file_bytes: int = 1024**3
    max_ratio: float = 200.0

    @classmethod
    def from_env(cls) -> ImportLimits:
        def get(name: str, default: float) -> float:
            raw = os.environ.get(f"LUTARTERIAL_IMPORT_{name}")
            if raw is None or not raw.strip():
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInputError(f"LUTARTERIAL_IMPORT_{name}={raw!r} is not a number") from None
            if value <= 0:
                raise InvalidInputError(f"LUTARTERIAL_IMPORT_{name} must be positive")
            return value

        d = cls()
        return cls(int(get("MAX_FILES", d.max_files)), int(get("MAX_BYTES", d.max_total_bytes)),
                   int(get("MAX_FILE_BYTES", d.max_file_bytes)), get("MAX_RATIO", d.max_ratio))


def store_root(db_url: str | None = None, store: str | os.PathLike[str] | None = None) -> Path:
    """The store directory: ``store``, else ``$LUTARTERIAL_STORE``, else ``<data dir of db_url>/store``."""
    if store:
        return Path(store)
    env = os.environ.get("LUTARTERIAL_STORE")
    if env:
        return Path(env)
    from lutarterial.registry.db import normalise_url

    url = normalise_url(db_url)
    data = os.environ.get("LUTARTERIAL_DATA_DIR")
    if data:
        return Path(data) / "store"
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///"):]).parent / "store"
    return Path("data") / "store"


class ContentStore:
    """Files by SHA-256 under ``root``; :meth:`put` moves a staged file in unless that content exists."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def tmp_dir(self) -> Path:
        d = self.root / "tmp"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def relpath(sha256: str) -> str:
        return f"sha256/{sha256[:2]}/{sha256}"

    def path(self, rel: str) -> Path:
        p = self.root / rel
        if not p.is_file():
            raise NotFoundError(f"stored file {rel} is missing from the store {self.root}")
        return p

    def put(self, staged: Path, sha256: str) -> str:
        """Move ``staged`` into the store (no-op when the content is already there). Returns the relpath."""
        rel = self.relpath(sha256)
        target = self.root / rel
        if target.exists():
            staged.unlink(missing_ok=True)
            return rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(staged, target)  # fails if the target appeared meanwhile: never overwrite
        except FileExistsError:
            pass
        except OSError:
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(staged, tmp)
            if not target.exists():
                os.replace(tmp, target)
            tmp.unlink(missing_ok=True)
        staged.unlink(missing_ok=True)
        os.chmod(target, 0o444)
        return rel


@dataclass
class StagedFile:
    """A file copied into the staging area, with its digest (``name`` is the path in the source)."""

    name: str
    path: Path
    sha256: str
    size: int
    source_dir: str  # directory of the file inside its source (for pairing NIfTI with names.json)


class _Budget:
    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def add_file(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise InvalidInputError(f"import refused: more than {self.limits.max_files} files "
                                    "(LUTARTERIAL_IMPORT_MAX_FILES)")

    def add_bytes(self, name: str, n: int, file_total: int) -> None:
        self.bytes += n
        if file_total > self.limits.max_file_bytes:
            raise InvalidInputError(f"import refused: {name} exceeds {self.limits.max_file_bytes} bytes "
                                    "(LUTARTERIAL_IMPORT_MAX_FILE_BYTES)")
        if self.bytes > self.limits.max_total_bytes:
            raise InvalidInputError(f"import refused: more than {self.limits.max_total_bytes} bytes in all "
                                    "(LUTARTERIAL_IMPORT_MAX_BYTES)")


def _copy_hashed(src: IO[bytes], name: str, tmp_dir: Path, budget: _Budget, declared: int | None = None) -> StagedFile:
    h = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="stage-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if declared is not None and size > declared:
                    raise InvalidInputError(f"import refused: zip member {name} is larger than its declared size")
                budget.add_bytes(name, len(chunk), size)
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    parent = str(Path(name).parent)
    return StagedFile(name, Path(tmp), h.hexdigest(), size, "" if parent == "." else parent)


def _walk(paths: list[Path]) -> Iterator[tuple[Path, str]]:
    for root in paths:
        if root.is_file():
            yield root, root.name
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    yield p, f"{root.name}/{p.relative_to(root).as_posix()}"
        else:
            raise NotFoundError(f"no such file or directory: {root}")


def stage_paths(paths: list[str | os.PathLike[str]], store: ContentStore, limits: ImportLimits) -> list[StagedFile]:
    """Copy files (folders walked recursively) into staging with their digests, within the limits.

    Zip files among ``paths`` are opened with :func:`stage_zip`.
    """
    roots = [Path(p) for p in paths]
    budget = _Budget(limits)
    tmp = store.tmp_dir()
    out: list[StagedFile] = []
    try:
        for p, name in _walk(roots):
            if p.suffix.lower() == ".zip" and zipfile.is_zipfile(p):
                out.extend(stage_zip(p, store, limits, budget=budget))
                continue
            budget.add_file(name)
            with p.open("rb") as f:
                out.append(_copy_hashed(f, name, tmp, budget))
    except BaseException:
        for s in out:
            s.path.unlink(missing_ok=True)
        raise
    return out


def stage_zip(path: str | os.PathLike[str] | IO[bytes], store: ContentStore, limits: ImportLimits,
              budget: _Budget | None = None) -> list[StagedFile]:
    """Stage the members of a zip after checking count, declared sizes and compression ratio."""
    budget = budget or _Budget(limits)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidInputError("import refused: not a valid zip file") from None
    out: list[StagedFile] = []
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        if budget.files + len(members) > limits.max_files:
            raise InvalidInputError(f"import refused: the zip holds {len(members)} files, more than "
                                    f"{limits.max_files} (LUTARTERIAL_IMPORT_MAX_FILES)")
        declared = sum(i.file_size for i in members)
        if budget.bytes + declared > limits.max_total_bytes:
            raise InvalidInputError(f"import refused: the zip expands to {declared} bytes, more than "
                                    f"{limits.max_total_bytes} (LUTARTERIAL_IMPORT_MAX_BYTES)")
        for i in members:
            if i.file_size > limits.max_file_bytes:
                raise InvalidInputError(f"import refused: zip member {i.filename} expands to {i.file_size} bytes "
                                        f"(limit {limits.max_file_bytes})")
            if i.file_size > 1_000_000 and i.file_size > limits.max_ratio * max(i.compress_size, 1):
                raise InvalidInputError(f"import refused: zip member {i.filename} is compressed "
                                        f"{i.file_size / max(i.compress_size, 1):.0f}:1 (limit {limits.max_ratio:g}:1; "
                                        "a zip bomb?)")
        tmp = store.tmp_dir()
        try:
            for i in members:
                budget.add_file(i.filename)
                with zf.open(i) as f:
                    out.append(_copy_hashed(f, i.filename, tmp, budget, declared=i.file_size))
        except BaseException:
            for s in out:
                s.path.unlink(missing_ok=True)
            raise
    return out
