import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuotaLimits(_message.Message):
    __slots__ = ("max_queued", "max_running")
    MAX_QUEUED_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_FIELD_NUMBER: _ClassVar[int]
    max_queued: int
    max_running: int
    def __init__(self, max_queued: _Optional[int] = ..., max_running: _Optional[int] = ...) -> None: ...

class AccountQuotas(_message.Message):
    __slots__ = ("account", "override", "effective", "updated_at")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    account: str
    override: QuotaLimits
    effective: QuotaLimits
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, account: _Optional[str] = ..., override: _Optional[_Union[QuotaLimits, _Mapping]] = ..., effective: _Optional[_Union[QuotaLimits, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetQuotasRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class SetQuotasRequest(_message.Message):
    __slots__ = ("account", "override")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    account: str
    override: QuotaLimits
    def __init__(self, account: _Optional[str] = ..., override: _Optional[_Union[QuotaLimits, _Mapping]] = ...) -> None: ...

class ListQuotasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListQuotasResponse(_message.Message):
    __slots__ = ("accounts", "defaults")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountQuotas]
    defaults: QuotaLimits
    def __init__(self, accounts: _Optional[_Iterable[_Union[AccountQuotas, _Mapping]]] = ..., defaults: _Optional[_Union[QuotaLimits, _Mapping]] = ...) -> None: ...
