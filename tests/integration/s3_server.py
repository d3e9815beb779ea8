"""An S3-compatible server for tests: moto in server mode, in a process of its own.

    with moto_server() as endpoint:          # "http://127.0.0.1:<port>"
        client = s3_client(endpoint)
        client.create_bucket(Bucket="docs")

moto accepts any credentials; ``s3_client`` passes dummy ones explicitly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
import httpx

from tests.integration.service import free_port, wait_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=30, what="the S3 server")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def s3_client(endpoint: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
