"""The serving manifest: the contract between promotion (the only writer) and serving (the reader).

A small JSON document the API reads with one GET (no MLflow import on the request path). It names the
Production version and where its two model files are, with their checksums. It carries no copy of the
threshold or the feature list: those have one home, the model's spec file, which the checksum pins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.model.artifacts import BOOSTER_ARTIFACT, SPEC_ARTIFACT
from fraudops.store.blobs import blob_store

MANIFEST_SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (2, 3)  # 2: before the compiled trees (served by the booster)


def model_file_uri(artifact_location: str, name: str) -> str:
    """A file the pyfunc model logged via ``artifacts=`` (MLflow puts them under ``artifacts/``)."""
    return f"{artifact_location.rstrip('/')}/artifacts/{name}"


def manifest_key(settings: Settings) -> str:
    return f"serving/{settings.model_name}/{settings.production_alias}.json"


def compiled_key(settings: Settings, version: str, sha256: str) -> str:
    """Content-addressed, so writing it before the manifest can never change what is served."""
    return f"serving/{settings.model_name}/compiled/v{version}-{sha256[:16]}.npz"


@dataclass(frozen=True)
class ServingManifest:
    """What the API needs to serve the Production version, written by promotion after the alias moved."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    artifact_location: str
    booster_sha256: str
    spec_sha256: str
    metrics: dict[str, float]
    promoted_at: str
    schema_version: int = MANIFEST_SCHEMA_VERSION
    # The verified compiled trees the API scores with (None: promotion could not compile this model,
    # the API serves the booster); a content-addressed key in the same store as this manifest.
    compiled_key: str | None = None
    compiled_sha256: str | None = None

    @property
    def booster_uri(self) -> str:
        return model_file_uri(self.artifact_location, BOOSTER_ARTIFACT)

    @property
    def spec_uri(self) -> str:
        return model_file_uri(self.artifact_location, SPEC_ARTIFACT)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> ServingManifest:
        try:
            data = json.loads(body)
            if data.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
                raise ValueError(
                    f"schema version {data.get('schema_version')} (this code reads {READABLE_SCHEMA_VERSIONS}): "
                    "re-run the promotion to republish it"
                )
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as error:
            raise StoreError(f"serving manifest is malformed: {error}") from error


def publish_manifest(settings: Settings, manifest: ServingManifest) -> None:
    blob_store(settings).put(manifest_key(settings), manifest.to_json())


def read_manifest(settings: Settings) -> tuple[ServingManifest | None, str | None]:
    """(manifest, etag), or (None, None) when nothing has been promoted yet."""
    found = blob_store(settings).get_with_etag(manifest_key(settings))
    if found is None:
        return None, None
    body, etag = found
    return ServingManifest.from_json(body), etag


def manifest_etag(settings: Settings) -> str | None:
    """One metadata call: has Production moved since we last looked?"""
    return blob_store(settings).etag(manifest_key(settings))
