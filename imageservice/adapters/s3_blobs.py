"""Blob storage in S3 (or any S3-compatible endpoint): one object per image under a key prefix.

A missing object is None (S3 says 404 NoSuchKey only to a caller allowed s3:ListBucket on the bucket,
see deploy/aws/template.yaml); a refused one is StoragePermissionDenied, never None.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from imageservice.adapters.aws import AwsClients, error_code, permission_checked
from imageservice.domain.ports import BlobInfo

__all__ = ["S3BlobStore"]

PREFIX = "images/"


class S3BlobStore:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients
        self._bucket = clients.settings.bucket

    def _where(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        with permission_checked("S3", self._where(PREFIX + name)):
            await self._clients.call(
                self._clients.s3.put_object,
                Bucket=self._bucket,
                Key=PREFIX + name,
                Body=data,
                ContentType=content_type,
            )

    async def get(self, name: str) -> bytes | None:
        def fetch() -> bytes | None:
            try:
                response = self._clients.s3.get_object(Bucket=self._bucket, Key=PREFIX + name)
            except ClientError as exc:
                if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                    return None
                raise
            body: bytes = response["Body"].read()
            return body

        with permission_checked("S3", self._where(PREFIX + name)):
            return await self._clients.call(fetch)

    async def delete(self, name: str) -> None:
        with permission_checked("S3", self._where(PREFIX + name)):
            await self._clients.call(self._clients.s3.delete_object, Bucket=self._bucket, Key=PREFIX + name)

    async def list_blobs(self) -> list[BlobInfo]:
        def scan() -> list[BlobInfo]:
            infos = []
            paginator = self._clients.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=PREFIX):
                for item in page.get("Contents", []):
                    infos.append(BlobInfo(item["Key"][len(PREFIX) :], item["LastModified"].timestamp()))
            return infos

        with permission_checked("S3", self._where(PREFIX)):
            return await self._clients.call(scan)
