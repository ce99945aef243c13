"""In AWS the training data is a SQLite snapshot in the data bucket; copy it to /tmp before reading.

Warm containers keep the copy and re-download only when the object's ETag changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from botocore.exceptions import ClientError

from fraudops.config import Settings
from fraudops.errors import DataError, StoreError
from fraudops.store.s3 import is_not_found, s3_client, split_s3_uri

log = logging.getLogger(__name__)


def fetch_training_db(settings: Settings, cache_dir: Path | None = None) -> Settings:
    """Settings whose ``db_path`` is a local copy of ``data_s3_uri`` (unchanged when that is unset)."""
    if not settings.data_s3_uri:
        return settings
    cache_dir = cache_dir or settings.state_dir / "data-cache"  # under /tmp in Lambda (FRAUDOPS_STATE_DIR)
    bucket, key = split_s3_uri(settings.data_s3_uri)
    client = s3_client(settings)
    cache_dir.mkdir(parents=True, exist_ok=True)
    local = cache_dir / Path(key).name
    etag_file = local.with_suffix(local.suffix + ".etag")
    try:
        etag = str(client.head_object(Bucket=bucket, Key=key)["ETag"])
        if not (local.exists() and etag_file.exists() and etag_file.read_text() == etag):
            log.info("downloading training data %s", settings.data_s3_uri)
            partial = local.with_suffix(".partial")
            client.download_file(bucket, key, str(partial))
            partial.replace(local)
            etag_file.write_text(etag)
    except ClientError as error:
        if is_not_found(error):
            raise DataError(f"no training data at {settings.data_s3_uri}: upload a fraud.db snapshot there") from error
        raise StoreError(f"cannot fetch training data {settings.data_s3_uri}: {error}") from error
    return settings.model_copy(update={"db_path": local})
