"""What a media store holds, read the same way on the data folder and on object storage."""

from __future__ import annotations

from reelout.media.context import MediaContext
from reelout.media.s3storage import S3MediaStore
from reelout.media.storage import FileMediaStore


def stored_videos(rt: MediaContext) -> set[str]:
    """The uids of every video the store holds anything of."""
    store = rt.media_store
    if isinstance(store, S3MediaStore):
        media = store.bucket.key("media") + "/"
        return {key.removeprefix(media).split("/")[0] for key, _ in store.bucket.keys(media)}
    assert isinstance(store, FileMediaStore)
    return {p.name for p in store.root.iterdir()}


def stored_names(rt: MediaContext, uid: str) -> list[str]:
    """Every stored file of one video, by its name under the video (`original`, `v-…/…`)."""
    store = rt.media_store
    if isinstance(store, S3MediaStore):
        under = store.bucket.key("media", uid) + "/"
        return sorted(key.removeprefix(under) for key, _ in store.bucket.keys(under))
    assert isinstance(store, FileMediaStore)
    folder = store.root / uid
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def damage_original(rt: MediaContext, uid: str, data: bytes | None) -> None:
    """Put `data` where the video's original is (None: remove it), behind the store's back, as
    a power loss or a lost disk would."""
    store = rt.media_store
    if isinstance(store, S3MediaStore):
        key = store.original_key(uid)
        if data is None:
            store.bucket.delete([key])
        else:
            store.bucket.put(key, data)
        return
    assert isinstance(store, FileMediaStore)
    if data is None:
        store.original_path(uid).unlink()
    else:
        store.original_path(uid).write_bytes(data)
