"""DeleteObjects answers 200 and names each key it could not delete in ``Errors``
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html): the lake's delete must not take
that 200 as success, or the parts of an aborted commit stay for folder readers to count twice."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fraudops.core.errors import StoreError
from fraudops.lake.storage import S3LakeStorage


def storage_with(response: dict[str, Any]) -> tuple[S3LakeStorage, Stubber]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    expected = {
        "Bucket": "data",
        "Delete": {"Objects": [{"Key": "lake/labels/a"}, {"Key": "lake/labels/b"}], "Quiet": True},
    }
    stubber.add_response("delete_objects", response, expected)
    storage = S3LakeStorage.__new__(S3LakeStorage)
    storage.bucket, storage.prefix, storage._client = "data", "lake", client
    return storage, stubber


def test_a_key_that_could_not_be_deleted_is_an_error_naming_it() -> None:
    denied = {"Errors": [{"Key": "lake/labels/b", "Code": "AccessDenied", "Message": "Access Denied"}]}
    storage, stubber = storage_with(denied)
    with stubber, pytest.raises(StoreError, match=r"cannot delete 1 object\(s\).*lake/labels/b \(AccessDenied"):
        storage.delete(["labels/a", "labels/b"])


def test_a_clean_delete_raises_nothing() -> None:
    storage, stubber = storage_with({})
    with stubber:
        storage.delete(["labels/a", "labels/b"])
    stubber.assert_no_pending_responses()
