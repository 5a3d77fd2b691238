"""Views of a node's backend from outside: the bytes any program would find there.

The layout is the contract of docs (DESIGN.md, "Backend layout"):
`<prefix>/<type>/<encoded key>`, with the key encoding below.
"""

from __future__ import annotations

import os
from pathlib import Path

BUCKET = "brain-it"
"""The bucket every S3 test uses (created in moto by the `moto` fixture)."""
PREFIX = "it"
"""The object prefix of the S3 backend: objects are `it/<type>/<encoded key>`."""

_PLAIN = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")


def encode_key(key: bytes | str) -> str:
    """A-Z a-z 0-9 - _ ~ as is, `.` as is except first, every other byte `%XX` (upper hex)."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    out = []
    for index, byte in enumerate(raw):
        if byte in _PLAIN or (byte == ord(".") and index > 0):
            out.append(chr(byte))
        else:
            out.append("%%%02X" % byte)
    return "".join(out)


class BackendView:
    """What the tests need of a backend: read, write and check single objects."""

    url: str
    env: dict[str, str]
    kind: str

    def get(self, type_folder: str, key: bytes | str) -> bytes | None:
        raise NotImplementedError

    def put(self, type_folder: str, key: bytes | str, data: bytes) -> None:
        raise NotImplementedError

    def exists(self, type_folder: str, key: bytes | str) -> bool:
        return self.get(type_folder, key) is not None

    def names(self, type_folder: str) -> set[str]:
        """The encoded key names under one type folder."""
        raise NotImplementedError


class FileBackendView(BackendView):
    kind = "file"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = "file://" + str(self.root)
        self.env = {}

    def path(self, type_folder: str, key: bytes | str) -> Path:
        return self.root / type_folder / encode_key(key)

    def get(self, type_folder, key):
        try:
            return self.path(type_folder, key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, type_folder, key, data):
        path = self.path(type_folder, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(".it-" + path.name)
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def names(self, type_folder):
        folder = self.root / type_folder
        if not folder.is_dir():
            return set()
        return {entry.name for entry in folder.iterdir() if entry.is_file()}


class S3BackendView(BackendView):
    kind = "s3"

    def __init__(self, moto, bucket: str, prefix: str):
        self.moto = moto
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}"
        self.env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "BRAIN_S3_ENDPOINT": moto.endpoint,
        }

    def object_name(self, type_folder: str, key: bytes | str) -> str:
        return f"{self.prefix}/{type_folder}/{encode_key(key)}"

    def get(self, type_folder, key):
        client = self.moto.client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=self.object_name(type_folder, key))
        except client.exceptions.NoSuchKey:
            return None
        return response["Body"].read()

    def put(self, type_folder, key, data):
        self.moto.client().put_object(Bucket=self.bucket, Key=self.object_name(type_folder, key), Body=data)

    def names(self, type_folder):
        client = self.moto.client()
        start = f"{self.prefix}/{type_folder}/"
        found = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                found.add(item["Key"][len(start) :])
        return found
