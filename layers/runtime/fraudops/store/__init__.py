"""The model store, one module per concern.

- ``s3``: the S3 client (and the guard that keeps a laptop from reaching real AWS by accident);
- ``blobs``: where artifacts and small JSON documents live, an S3 bucket or a local folder;
- ``registry``: the MLflow registry session, over one of three backends (SQLite file, SQLite object
  in S3 with conditional writes, or a tracking server);
- ``manifest``: the serving manifest, the contract between promotion (writer) and serving (reader).

Imports ``fraudops.core`` and ``fraudops.model.artifacts`` (the names of a model's files).
"""

from fraudops.core.errors import ArtifactMissingError, RegistryConflictError, StoreError
from fraudops.store.blobs import BlobStore, blob_store, read_uri, sha256_hex, write_uri
from fraudops.store.manifest import ServingManifest, manifest_etag, model_file_uri, publish_manifest, read_manifest
from fraudops.store.registry import ModelStore, with_registry_retries
from fraudops.store.s3 import ensure_bucket, reset_s3_clients, s3_client, split_s3_uri

__all__ = [
    "ArtifactMissingError",
    "BlobStore",
    "ModelStore",
    "RegistryConflictError",
    "ServingManifest",
    "StoreError",
    "blob_store",
    "ensure_bucket",
    "manifest_etag",
    "model_file_uri",
    "publish_manifest",
    "read_manifest",
    "read_uri",
    "reset_s3_clients",
    "s3_client",
    "sha256_hex",
    "split_s3_uri",
    "with_registry_retries",
    "write_uri",
]
