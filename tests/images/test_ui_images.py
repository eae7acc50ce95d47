"""The UI's images routes (/ui/api/images, /ui/api/image/delete) against a real server
on the Docker engine: an account lists and deletes its images; another account never
sees nor deletes them (they look missing); bad input and bad methods are 4xx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudpipe_sdk import Client, Image
from tests.gateway.support import GatewayProcess, assert_api_error, start_gateway
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


@pytest.fixture
def gateway(image_server: ServerProcess, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = start_gateway(image_server.address, tmp_path)
    yield process
    assert process.stop() == 0, process.log


def test_an_account_lists_and_deletes_its_images_and_never_another_accounts(
    image_server: ServerProcess, gateway: GatewayProcess
) -> None:
    account, other = f"uiimg-{uuid.uuid4().hex[:10]}", f"uiother-{uuid.uuid4().hex[:10]}"
    with Client(image_server.address, account=account) as client:
        built = client.images.build(Image.runner().env({"UI_IMAGES_TEST": uuid.uuid4().hex}))
        try:
            with (
                httpx.Client(base_url=gateway.url, auth=(account, "any-key"), timeout=30) as http,
                httpx.Client(base_url=gateway.url, auth=(other, "any-key"), timeout=30) as stranger,
            ):
                (image,) = http.get("/ui/api/images").json()["images"]
                assert image["reference"] == built.reference and image["digest"] == built.digest
                assert image["created_at"] and image["summary"] == built.summary and "env" in image["summary"]
                assert image["size_bytes"] == built.size_bytes

                assert stranger.get("/ui/api/images").json() == {"images": []}
                refused = stranger.post("/ui/api/image/delete", data={"reference": built.reference})
                assert_api_error(refused, 404, "NOTFOUND")
                assert [i.reference for i in client.images.list()] == [built.reference]  # still there

                assert_api_error(http.post("/ui/api/image/delete", data={"reference": " "}), 400, "QINVAL")
                assert http.get("/ui/api/image/delete", params={"reference": built.reference}).status_code == 405
                assert http.post("/ui/api/images").status_code == 405

                deleted = http.post("/ui/api/image/delete", data={"reference": built.reference})
                assert deleted.status_code == 200, deleted.text
                assert deleted.json() == {"deleted": built.reference}
                assert http.get("/ui/api/images").json() == {"images": []}
                again = http.post("/ui/api/image/delete", data={"reference": built.reference})
                assert_api_error(again, 404, "NOTFOUND")
        finally:
            for left in client.images.list():
                client.images.delete(left.reference)


def test_bad_credentials_beat_bad_input(gateway: GatewayProcess) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as anonymous:
        response = anonymous.post("/ui/api/image/delete", data={"reference": ""})
        assert response.status_code == 401, response.text
