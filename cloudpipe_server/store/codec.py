"""Spec <-> JSON-able dict, shared by the store backends. `stdin` is kept out of the
document (backends store it as a binary column), so specs stay small to scan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# re-exported: the stores' time codec is shared with the auth service's account store
from cloudpipe_common.timestamps import from_ns as from_ns
from cloudpipe_common.timestamps import to_ns as to_ns
from cloudpipe_server.models import Collected, JobSpec, Resources, ResultType


def spec_to_doc(spec: JobSpec) -> dict[str, Any]:
    """Everything of the spec but stdin, as plain JSON types."""
    return {
        "cmd": spec.cmd,
        "name": spec.name,
        "image": spec.image,
        "env": dict(spec.env),
        "tags": dict(spec.tags),
        "result_source": spec.result_source,
        "result_type": spec.result_type.value,
        "max_runtime": spec.max_runtime.total_seconds() if spec.max_runtime is not None else None,
        "restartable": spec.restartable,
        "depends_on": list(spec.depends_on),
        "resources": {
            "cpus": spec.resources.cpus,
            "memory_bytes": spec.resources.memory_bytes,
            "pids": spec.resources.pids,
        },
        "network": spec.network,
        "core": spec.core,
        "multicore": spec.multicore,
        "profile": spec.profile,
        "volumes": list(spec.volumes),
        "serializer": spec.serializer,
        "client_python": spec.client_python,
        "interactive": spec.interactive,
        "idempotency_key": spec.idempotency_key,
        "saved_job": spec.saved_job,
        "saved_job_version": spec.saved_job_version,
        "schedule_id": spec.schedule_id,
        "fresh_container": spec.fresh_container,
    }


def spec_from_doc(doc: dict[str, Any], stdin: bytes) -> JobSpec:
    """Inverse of `spec_to_doc`."""
    max_runtime = doc.get("max_runtime")
    return JobSpec(
        cmd=doc["cmd"],
        name=doc.get("name", ""),
        image=doc.get("image", ""),
        stdin=stdin,
        env=dict(doc.get("env", {})),
        tags=dict(doc.get("tags", {})),
        result_source=doc.get("result_source", "stdout"),
        result_type=ResultType(doc.get("result_type", "binary")),
        max_runtime=timedelta(seconds=max_runtime) if max_runtime is not None else None,
        restartable=bool(doc.get("restartable", False)),
        depends_on=tuple(doc.get("depends_on", ())),
        resources=Resources(**doc.get("resources", {})),
        network=bool(doc.get("network", False)),
        core=doc.get("core", ""),
        multicore=int(doc.get("multicore", 0)),
        profile=bool(doc.get("profile", False)),
        volumes=tuple(doc.get("volumes", ())),
        serializer=doc.get("serializer", ""),
        client_python=doc.get("client_python", ""),
        interactive=bool(doc.get("interactive", False)),
        idempotency_key=doc.get("idempotency_key", ""),
        saved_job=doc.get("saved_job", ""),
        saved_job_version=int(doc.get("saved_job_version", 0)),
        schedule_id=doc.get("schedule_id", ""),
        fresh_container=bool(doc.get("fresh_container", False)),
    )


def collected_to_doc(collected: Collected) -> dict[str, Any]:
    return {
        "cputime_user_ns": collected.cputime_user_ns,
        "cputime_system_ns": collected.cputime_system_ns,
        "memory_max_usage_bytes": collected.memory_max_usage_bytes,
        "memory_failcnt": collected.memory_failcnt,
        "oom_killed": collected.oom_killed,
    }


def collected_from_doc(doc: dict[str, Any] | None) -> Collected:
    return Collected(**doc) if doc else Collected()
