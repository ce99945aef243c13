"""pyiceberg's FileIO for a lake in S3, through our boto3 client: the same endpoint, region, credentials
and retries as every other S3 call of ours (``fraudops.store.s3``), and so also moto, in process (the
retrain state machine's emulation) or as a server. pyiceberg's default S3 FileIO is pyarrow's C++ S3
filesystem, which moto's in-process mock cannot reach.

Writes are one PUT when the stream closes (a data file is at most one flush of ``FLUSH_ROWS`` rows, tens
of MB); reads of metadata are one GET each (small files), ranged reads are ours (``lake.storage``).
A local lake keeps pyiceberg's own (pyarrow) FileIO.
"""

from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import ClientError
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream

from fraudops.store.s3 import is_not_found, s3_client_at, split_s3_uri


def _client(properties: dict[str, str]) -> Any:
    return s3_client_at(properties.get("s3.endpoint") or None, properties.get("s3.region", "us-east-1"))


def _bucket_key(location: str) -> tuple[str, str]:
    return split_s3_uri(location.replace("s3a://", "s3://", 1).replace("s3n://", "s3://", 1))


class _S3InputFile(InputFile):
    def __init__(self, location: str, client: Any) -> None:
        super().__init__(location)
        self._client = client
        self._bucket, self._key = _bucket_key(location)
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            head = self._client.head_object(Bucket=self._bucket, Key=self._key)
            self._size = int(head["ContentLength"])
        return self._size

    def exists(self) -> bool:
        try:
            len(self)
        except ClientError as error:
            if is_not_found(error):
                return False
            raise
        return True

    def open(self, seekable: bool = True) -> InputStream:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
        except ClientError as error:
            if is_not_found(error):
                raise FileNotFoundError(self.location) from error
            raise
        return io.BytesIO(body)


class _PutOnClose(io.BytesIO):
    def __init__(self, output: _S3OutputFile) -> None:
        super().__init__()
        self._output = output

    def close(self) -> None:
        if not self.closed:
            body = self.getvalue()
            self._output._put(body)
        super().close()


class _S3OutputFile(OutputFile):
    def __init__(self, location: str, client: Any) -> None:
        super().__init__(location)
        self._client = client
        self._bucket, self._key = _bucket_key(location)
        self._written: int | None = None

    def __len__(self) -> int:
        if self._written is not None:
            return self._written
        return len(self.to_input_file())

    def exists(self) -> bool:
        return self.to_input_file().exists()

    def to_input_file(self) -> InputFile:
        return _S3InputFile(self.location, self._client)

    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(self.location)
        return _PutOnClose(self)

    def _put(self, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body)
        self._written = len(body)


class Boto3FileIO(FileIO):
    """``py-io-impl`` of the lake's catalog when the lake is in S3 (``catalog.lake_catalog``)."""

    def new_input(self, location: str) -> InputFile:
        return _S3InputFile(location, _client(self.properties))

    def new_output(self, location: str) -> OutputFile:
        return _S3OutputFile(location, _client(self.properties))

    def delete(self, location: str | InputFile | OutputFile) -> None:
        uri = location if isinstance(location, str) else location.location
        bucket, key = _bucket_key(uri)
        _client(self.properties).delete_object(Bucket=bucket, Key=key)
