"""The HTTP gateway's `layer` (multyvac's `_layer`) may name an image the account built:
the job runs in it; another account naming the same reference is refused."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudpipe_sdk import Client, Image
from tests.gateway.support import GatewayProcess, job_payload, start_gateway, submit, wait_status
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


@pytest.fixture
def gateway(image_server: ServerProcess, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = start_gateway(image_server.address, tmp_path)
    yield process
    assert process.stop() == 0, process.log


def test_a_layer_names_an_image_of_the_account(image_server: ServerProcess, gateway: GatewayProcess) -> None:
    account = f"layer-{uuid.uuid4().hex[:10]}"
    with Client(image_server.address, account=account) as client:
        built = client.images.build(Image.runner().apt_install("figlet"))
        try:
            with httpx.Client(base_url=gateway.url, auth=(account, "any-key"), timeout=30) as http:
                (jid,) = submit(http, job_payload("figlet -v | head -1", layer=[{"name": built.reference}]))
                job = wait_status(http, jid, {"done", "error", "killed", "stalled"}, timeout=120)
                assert job["status"] == "done", job
                assert base64.b64decode(str(job["result"])).startswith(b"FIGlet Copyright")
                assert job["layer"] == [{"name": built.reference}]
            with httpx.Client(base_url=gateway.url, auth=(f"other-{account}", "any-key"), timeout=30) as other:
                payload = job_payload("true", layer=[{"name": built.reference}])
                response = other.post("/v1/job", json={"jobs": [payload]})
                assert response.status_code == 400, response.text
                assert built.reference in response.text
        finally:
            client.images.delete(built.reference)
