"""S3-compatible object storage: one bucket and key prefix, and the calls every store makes on it.

The client is boto3 (botocore underneath), chosen over obstore and aiobotocore:
- tus on object storage is built on S3's multipart calls, as tusd's S3 store is: CreateMultipartUpload,
  UploadPart, UploadPartCopy (server-side concatenation), CompleteMultipartUpload,
  AbortMultipartUpload and ListMultipartUploads (the reaper). obstore exposes none of them by
  upload id (its multipart writer lives and dies inside one process), so it cannot resume an
  upload on another host.
- Reelout's stores are synchronous and run in the I/O thread pool (`reelout.iothreads`), like the
  local-folder stores, so the event loop never waits on storage; a thread-safe sync client fits
  that as it is, where aiobotocore would need a second event loop or a rewrite of every store.
- boto3 is AWS's own SDK, released weekly; every S3-compatible service tests against it.
`bench/s3_upload.py` measures what this costs: tus into the bucket against a bare multipart
upload of the same bytes with the same client.

Credentials come from boto3's own chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
`AWS_SESSION_TOKEN`, shared config files, instance roles); the region from `AWS_REGION` (or
`AWS_DEFAULT_REGION`) and a non-AWS endpoint from `AWS_ENDPOINT_URL`, with path-style addressing
there, which every S3-compatible server understands.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from reelout.errors import StorageFailed

__all__ = ["Bucket", "Location", "StorageFailed", "make_client", "storage_errors"]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

MISSING = {"404", "NoSuchKey", "NoSuchUpload", "NotFound"}
WHOLE_COPIES = TransferConfig(multipart_threshold=5 * 1024**3, multipart_chunksize=1024**3)
P = ParamSpec("P")
R = TypeVar("R")


def storage_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the client's errors into `StorageFailed`, which the services and the app handle."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StorageFailed(errno.EIO, f"object storage: {exc}") from exc

    return wrapped


@dataclass(frozen=True)
class Location:
    """`s3://bucket/prefix`: the bucket, and the folder-like prefix every key starts with."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        return cls(bucket, prefix + "/" if prefix else "")


def is_missing(exc: Exception) -> bool:
    """True for S3's answers that a key or multipart upload does not exist."""
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")) in MISSING


def make_client(max_connections: int = 32) -> S3Client:
    """A thread-safe S3 client from the standard AWS variables (see the module docstring)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(
        max_pool_connections=max_connections,
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path" if endpoint else "auto"},
        signature_version="s3v4",  # else presigned URLs are SigV2, which R2 and new regions refuse
        connect_timeout=5,
        read_timeout=60,
    )
    client: S3Client = boto3.client("s3", region_name=region, endpoint_url=endpoint, config=config)
    return client


class Bucket:
    """Keys under one prefix of one bucket; `key("a", "b")` is `<prefix>a/b`."""

    def __init__(self, location: Location, client: S3Client | None = None) -> None:
        self.location = location
        self.name = location.bucket
        self.client = client or make_client()

    def key(self, *parts: str) -> str:
        return self.location.prefix + "/".join(parts)

    def size(self, key: str) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            head = self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def put(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Store `data` as one object; returns its ETag."""
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        reply = self.client.put_object(Bucket=self.name, Key=key, Body=data, **extra)
        return str(reply["ETag"])

    def get(self, key: str, first: int | None = None, last: int | None = None) -> bytes | None:
        """The object's bytes (or bytes first..last, inclusive), None when it does not exist."""
        extra: dict[str, Any] = {}
        if first is not None:
            extra["Range"] = f"bytes={first}-{'' if last is None else last}"
        try:
            reply = self.client.get_object(Bucket=self.name, Key=key, **extra)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return reply["Body"].read()

    def open(self, key: str, first: int | None = None, last: int | None = None) -> Any:
        """A streaming body (`read(n)`, `iter_chunks()`, `close()`) of the object or a range."""
        extra: dict[str, Any] = {}
        if first is not None:
            extra["Range"] = f"bytes={first}-{'' if last is None else last}"
        return self.client.get_object(Bucket=self.name, Key=key, **extra)["Body"]

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every (key, size) under `prefix`, in key order."""
        return ((key, size) for key, size, _ in self.objects(prefix))

    def objects(self, prefix: str) -> Iterator[tuple[str, int, datetime]]:
        """Every (key, size, last modified) under `prefix`, in key order."""
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.name, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], int(item["Size"]), item["LastModified"]

    def delete(self, keys: list[str]) -> None:
        """Delete these keys (missing ones are no error), 1,000 per request as S3 allows."""
        for start in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": key} for key in keys[start : start + 1000]
            ]
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})

    def delete_prefix(self, prefix: str) -> None:
        self.delete([key for key, _ in self.keys(prefix)])

    def copy(self, source: str, target: str) -> None:
        """Server-side copy inside the bucket: one CopyObject up to S3's 5 GiB limit (boto3's
        default would copy in 8 MiB parts, one request each), a multipart copy past it."""
        self.client.copy(
            {"Bucket": self.name, "Key": source}, self.name, target, Config=WHOLE_COPIES
        )

    def presign(self, key: str, expires_in: int) -> str:
        """A time-limited GET URL for one object."""
        params = {"Bucket": self.name, "Key": key}
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def check(self) -> str | None:
        """None when the bucket answers; else a reason a person can act on (for /readyz)."""
        try:
            self.client.head_bucket(Bucket=self.name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            return f"storage: bucket {self.name!r} answered {code}: check REELOUT_STORAGE_URL and the AWS_* credentials"
        except BotoCoreError as exc:
            return f"storage: bucket {self.name!r} is unreachable ({exc}): check AWS_ENDPOINT_URL and the network"
        return None
