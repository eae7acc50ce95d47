import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageSpec(_message.Message):
    __slots__ = ("base", "steps")
    BASE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    base: str
    steps: _containers.RepeatedCompositeFieldContainer[ImageStep]
    def __init__(self, base: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[ImageStep, _Mapping]]] = ...) -> None: ...

class ImageStep(_message.Message):
    __slots__ = ("pip_install", "apt_install", "env", "run_commands", "add_files")
    PIP_INSTALL_FIELD_NUMBER: _ClassVar[int]
    APT_INSTALL_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    RUN_COMMANDS_FIELD_NUMBER: _ClassVar[int]
    ADD_FILES_FIELD_NUMBER: _ClassVar[int]
    pip_install: Packages
    apt_install: Packages
    env: Environment
    run_commands: Commands
    add_files: Files
    def __init__(self, pip_install: _Optional[_Union[Packages, _Mapping]] = ..., apt_install: _Optional[_Union[Packages, _Mapping]] = ..., env: _Optional[_Union[Environment, _Mapping]] = ..., run_commands: _Optional[_Union[Commands, _Mapping]] = ..., add_files: _Optional[_Union[Files, _Mapping]] = ...) -> None: ...

class Packages(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("variables",)
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    variables: _containers.ScalarMap[str, str]
    def __init__(self, variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Commands(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, commands: _Optional[_Iterable[str]] = ...) -> None: ...

class Files(_message.Message):
    __slots__ = ("destination", "files", "python_path")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PYTHON_PATH_FIELD_NUMBER: _ClassVar[int]
    destination: str
    files: _containers.RepeatedCompositeFieldContainer[File]
    python_path: bool
    def __init__(self, destination: _Optional[str] = ..., files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., python_path: _Optional[bool] = ...) -> None: ...

class File(_message.Message):
    __slots__ = ("path", "content", "mode")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: bytes
    mode: int
    def __init__(self, path: _Optional[str] = ..., content: _Optional[bytes] = ..., mode: _Optional[int] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("reference", "digest", "created_at", "size_bytes", "summary")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    reference: str
    digest: str
    created_at: _timestamp_pb2.Timestamp
    size_bytes: int
    summary: str
    def __init__(self, reference: _Optional[str] = ..., digest: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...

class BuildImageRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: ImageSpec
    def __init__(self, spec: _Optional[_Union[ImageSpec, _Mapping]] = ...) -> None: ...

class BuildEvent(_message.Message):
    __slots__ = ("log", "built", "failed")
    LOG_FIELD_NUMBER: _ClassVar[int]
    BUILT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    log: BuildLog
    built: Built
    failed: BuildFailed
    def __init__(self, log: _Optional[_Union[BuildLog, _Mapping]] = ..., built: _Optional[_Union[Built, _Mapping]] = ..., failed: _Optional[_Union[BuildFailed, _Mapping]] = ...) -> None: ...

class BuildLog(_message.Message):
    __slots__ = ("line", "step", "steps")
    LINE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    line: str
    step: int
    steps: int
    def __init__(self, line: _Optional[str] = ..., step: _Optional[int] = ..., steps: _Optional[int] = ...) -> None: ...

class Built(_message.Message):
    __slots__ = ("image", "cached")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    image: Image
    cached: bool
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., cached: _Optional[bool] = ...) -> None: ...

class BuildFailed(_message.Message):
    __slots__ = ("step", "step_description", "message", "log_tail")
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEP_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    step: int
    step_description: str
    message: str
    log_tail: str
    def __init__(self, step: _Optional[int] = ..., step_description: _Optional[str] = ..., message: _Optional[str] = ..., log_tail: _Optional[str] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class DeleteImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
