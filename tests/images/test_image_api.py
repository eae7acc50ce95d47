"""ImageService over gRPC: bad requests get a clear status (never INTERNAL), the
engine's absence is UNAVAILABLE, and the account's bound on images is kept."""

from __future__ import annotations

import asyncio
import uuid

import docker
import grpc
import pytest

from cloudpipe_proto.v1 import images_pb2 as pb
from cloudpipe_proto.v1 import images_pb2_grpc as pb_grpc
from cloudpipe_sdk import Client, Image, ImageBuildFailed
from cloudpipe_server.errors import ResourceExhausted, Unavailable
from cloudpipe_server.images import spec as s
from cloudpipe_server.images.build import MAX_REQUESTS_PER_ACCOUNT, BuildConfig, Done, ImageBuilder
from tests.support import ServerProcess, code_of

pytestmark = pytest.mark.docker


def test_bad_requests_get_clear_statuses(image_server: ServerProcess) -> None:
    md = (("x-cloudpipe-account", f"api-{uuid.uuid4().hex[:8]}"),)
    with grpc.insecure_channel(image_server.address) as channel:
        stub = pb_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(lambda: stub.Build(pb.BuildImageRequest(), metadata=md, timeout=10)) == invalid
        empty_step = pb.BuildImageRequest(spec=pb.ImageSpec(steps=[pb.ImageStep()]))
        assert code_of(lambda: stub.Build(empty_step, metadata=md, timeout=10)) == invalid
        bad_base = pb.BuildImageRequest(spec=pb.ImageSpec(base="Not An Image!"))
        assert code_of(lambda: stub.Build(bad_base, metadata=md, timeout=10)) == invalid
        for reference in ("", "nonsense", "cloudpipe/runner-python3:latest", "cloudpipe/image:xyz"):
            get = pb.GetImageRequest(reference=reference)
            assert code_of(lambda: stub.Get(get, metadata=md, timeout=10)) == invalid  # noqa: B023
        missing = pb.GetImageRequest(reference="cloudpipe/image:" + "0" * 64)
        assert code_of(lambda: stub.Get(missing, metadata=md, timeout=10)) == grpc.StatusCode.NOT_FOUND
        gone = pb.DeleteImageRequest(reference="cloudpipe/image:" + "0" * 64)
        assert code_of(lambda: stub.Delete(gone, metadata=md, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_a_build_needs_credentials(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.BuildImageRequest(spec=pb.ImageSpec())
        assert code_of(lambda: stub.Build(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED


def test_a_base_the_engine_lacks_fails_the_setup_step(account_client: Client) -> None:
    with pytest.raises(ImageBuildFailed) as raised:
        account_client.images.build(Image.from_image(f"cloudpipe-test/absent:{uuid.uuid4().hex[:8]}"))
    assert raised.value.step == 0 and "not on the server's engine" in str(raised.value)


def test_an_engine_that_does_not_answer_is_unavailable() -> None:
    builder = ImageBuilder(BuildConfig(runner_image="x", base_url="unix:///nonexistent/docker.sock"))

    async def look() -> None:
        await builder.inspect("cloudpipe/image:" + "0" * 64)

    with pytest.raises(Unavailable, match="does not answer"):
        asyncio.run(look())


def test_an_account_has_a_bounded_number_of_images() -> None:
    builder = ImageBuilder(BuildConfig(runner_image="cloudpipe/runner-python3:latest", max_images_per_account=1))
    account = f"bounded-{uuid.uuid4().hex[:8]}"

    async def build(marker: str) -> Done:
        spec = s.ImageSpec("", (s.Step("run_commands", names=(f"echo {marker}",)),))
        events = [event async for event in builder.build(account, spec)]
        assert isinstance(events[-1], Done)
        return events[-1]

    async def scenario() -> None:
        first = await build("one")
        try:
            assert (await build("one")).cached  # the same image again is not a new one
            with pytest.raises(ResourceExhausted, match="the most it may have"):
                await build("two")
        finally:
            await builder.remove(first.image.reference)

    try:
        asyncio.run(scenario())
    finally:
        builder.close()


def test_an_account_has_a_bounded_number_of_builds_in_progress() -> None:
    """Found in review: build requests waiting for a slot were unbounded per account."""
    builder = ImageBuilder(BuildConfig(runner_image="cloudpipe/runner-python3:latest", concurrent_builds=1))
    account, other = (f"{who}-{uuid.uuid4().hex[:8]}" for who in ("busy", "calm"))

    def spec() -> s.ImageSpec:
        return s.ImageSpec("", (s.Step("run_commands", names=(f"sleep 30; echo {uuid.uuid4().hex}",)),))

    async def scenario() -> None:
        running = [builder.build(account, spec()) for _ in range(MAX_REQUESTS_PER_ACCOUNT)]
        try:
            for build in running:
                await anext(build)  # each is in progress (building, or waiting for the slot)
            with pytest.raises(ResourceExhausted, match="builds in progress"):
                await anext(builder.build(account, spec()))
            calm = builder.build(other, spec())  # another account is not held back
            assert await anext(calm) is not None
            await calm.aclose()
            await running.pop().aclose()  # one ends: the account may start another
            again = builder.build(account, spec())
            assert await anext(again) is not None
            await again.aclose()
        finally:
            for build in running:
                await build.aclose()
        assert builder._requests == {}

    try:
        asyncio.run(scenario())
    finally:
        builder.close()


def test_an_image_whose_tag_is_gone_is_not_listed(account_client: Client, docker_engine: docker.DockerClient) -> None:
    """An untagged image (its tag moved to a rebuild) cannot be named or deleted, so the
    list leaves it out (it showed, and its Delete answered NOT_FOUND)."""
    built = account_client.images.build(Image.runner().env({"UNTAGGED": uuid.uuid4().hex}))
    keep = f"cloudpipe-test/untagged:{uuid.uuid4().hex[:12]}"
    docker_engine.api.tag(built.reference, keep)  # a second name keeps the image when its tag goes
    try:
        assert [image.reference for image in account_client.images.list()] == [built.reference]
        docker_engine.api.remove_image(built.reference)  # removes only that tag
        assert account_client.images.list() == []
    finally:
        docker_engine.api.remove_image(keep, force=True)
