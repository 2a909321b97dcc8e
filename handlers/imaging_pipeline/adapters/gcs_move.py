"""Move a staging object to processed/ or failed/ without ever losing or duplicating it.

GCS has no rename: a move is a copy then a delete. Both steps are conditional so that a retried
event (Eventarc delivers at least once) converges on the same end state:

- copy only if the destination does not exist (`if_generation_match=0`); a destination that
  already holds the same bytes (same CRC32C and size) is this move's earlier copy and is reused;
  one holding other bytes (an earlier upload under the same name) is never overwritten, this
  object gets a name with its generation in it instead;
- delete the source only if it is still the generation the event announced
  (`if_generation_match`), so a newer upload under the same name is left for its own event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage

# GCS limits custom metadata to 8 KiB per object; details are cut well below that.
MAX_METADATA_VALUE = 1024


@dataclass(frozen=True)
class SourceVersion:
    """The object version an event announced, as read before any download."""

    name: str
    generation: int
    size: int | None
    crc32c: str | None

    @classmethod
    def of(cls, blob: storage.Blob) -> SourceVersion:
        return cls(blob.name, int(blob.generation), blob.size, blob.crc32c)


@dataclass(frozen=True)
class MoveResult:
    destination: str
    copied: bool  # False when an earlier attempt had already copied the object
    source_deleted: bool  # False when the source was already gone or had been replaced


def _same_bytes(existing: storage.Blob, source: SourceVersion) -> bool:
    return (
        existing.size == source.size
        and source.crc32c is not None
        and existing.crc32c == source.crc32c
    )


def destination_names(relative_name: str, dest_prefix: str, generation: int) -> list[str]:
    """Preferred destination, then one that cannot collide with another upload's."""
    path = PurePosixPath(relative_name)
    with_generation = path.with_name(f"{path.stem}.{generation}{path.suffix}")
    return [f"{dest_prefix}{path}", f"{dest_prefix}{with_generation}"]


def move_object(
    bucket: storage.Bucket,
    source: SourceVersion,
    relative_name: str,
    dest_prefix: str,
    metadata: dict[str, str],
) -> MoveResult:
    """Copies `source` to `dest_prefix` + `relative_name`, then deletes it."""
    generation = source.generation
    destination, copied = _copy_once(bucket, source, relative_name, dest_prefix)
    dest_blob = bucket.blob(destination)
    dest_blob.metadata = {k: v[:MAX_METADATA_VALUE] for k, v in metadata.items()}
    dest_blob.patch()  # the same metadata again on a retry: idempotent
    try:
        bucket.delete_blob(source.name, if_generation_match=generation)
        deleted = True
    except (NotFound, PreconditionFailed):
        deleted = False  # already deleted by an earlier attempt, or replaced by a newer upload
    return MoveResult(destination=destination, copied=copied, source_deleted=deleted)


def _copy_once(
    bucket: storage.Bucket, source: SourceVersion, relative_name: str, dest_prefix: str
) -> tuple[str, bool]:
    generation = source.generation
    for name in destination_names(relative_name, dest_prefix, generation):
        existing = bucket.get_blob(name)
        if existing is not None:
            if _same_bytes(existing, source):
                return name, False
            continue
        try:
            bucket.copy_blob(
                bucket.blob(source.name),
                bucket,
                name,
                source_generation=generation,
                if_generation_match=0,
            )
            return name, True
        except PreconditionFailed:
            # Created between our check and our copy; it is ours only if the bytes match.
            existing = bucket.get_blob(name)
            if existing is not None and _same_bytes(existing, source):
                return name, False
    raise RuntimeError(f"no free destination for generation {generation} under {dest_prefix}")
