"""ImageSpec and Image messages <-> the domain values of `spec` (the only bridge)."""

from __future__ import annotations

from cloudpipe_proto.v1 import images_pb2 as pb
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.images import spec as s
from cloudpipe_server.images.engine import BuiltImage


def spec_from_pb(message: pb.ImageSpec) -> s.ImageSpec:
    """A validated spec; InvalidArgument / ResourceExhausted naming the field."""
    if len(message.steps) > s.MAX_STEPS:
        s.check_totals(s.ImageSpec(steps=tuple(s.Step("env") for _ in message.steps)))
    steps = tuple(_step_from_pb(step, f"spec.steps[{i}]") for i, step in enumerate(message.steps))
    return s.check_totals(s.ImageSpec(s.check_base(message.base), steps))


def _step_from_pb(message: pb.ImageStep, where: str) -> s.Step:
    kind = message.WhichOneof("step")
    if kind in ("pip_install", "apt_install"):
        packages = message.pip_install if kind == "pip_install" else message.apt_install
        return s.Step(kind, names=s.check_names(kind, list(packages.names), f"{where}.{kind}"))
    if kind == "env":
        return s.Step(kind, variables=s.check_variables(dict(message.env.variables), f"{where}.env"))
    if kind == "run_commands":
        return s.Step(kind, names=s.check_commands(list(message.run_commands.commands), f"{where}.run_commands"))
    if kind == "add_files":
        files = message.add_files
        place = f"{where}.add_files"
        if not files.files:
            raise InvalidArgument(f"{place}: no files")
        if len(files.files) > s.MAX_FILES:
            raise InvalidArgument(f"{place}: at most {s.MAX_FILES} files")
        destination = "" if files.python_path else s.check_destination(files.destination, place)
        added = []
        seen: set[str] = set()
        for index, item in enumerate(files.files):
            path = s.check_file_path(item.path, f"{place}.files[{index}]")
            if path in seen:
                raise InvalidArgument(f"{place}.files[{index}]: {path!r} given twice")
            seen.add(path)
            added.append(s.AddedFile(path, item.content, s.check_mode(item.mode, f"{place}.files[{index}]")))
        return s.Step(kind, destination=destination, files=tuple(added), python_path=files.python_path)
    raise InvalidArgument(f"{where}: a step needs one of pip_install, apt_install, env, run_commands, add_files")


def image_to_pb(image: BuiltImage) -> pb.Image:
    message = pb.Image(
        reference=image.reference, digest=image.digest, size_bytes=image.size_bytes, summary=image.summary
    )
    if image.created_at is not None:
        message.created_at.FromDatetime(image.created_at)
    return message
