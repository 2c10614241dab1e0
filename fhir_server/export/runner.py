"""Run a bulk export job: read the store type by type, write ndjson files, record the manifest."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import fhirjson
from ..compartment import patient_ids
from ..store.base import Store, StoredVersion
from . import jobs

log = logging.getLogger("relais.export")

LEASE_S = 60.0
_RENEW_EVERY_S = 10.0
KEEP_S = 24 * 3600.0  # finished exports (files and manifest) are kept this long
_PAGE = 2000  # versions read per store call
_LINES_PER_FILE = 100_000
# fhirjson writes decimals as they were sent (0.10, not 0.1)
_encode = fhirjson.dumps_text
WORKER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Cancelled(Exception):
    """The job was cancelled (DELETE on its status URL) while it ran."""


def export_dir(store: Store, config: Any) -> Path:
    """Where export files live: beside an SQLite file (./var/exports by default), else ./var/exports."""
    configured = getattr(config, "export_dir", None)
    if configured:
        return Path(configured)
    path = getattr(store, "path", None)
    if isinstance(path, str) and path != ":memory:":
        return Path(os.path.dirname(os.path.abspath(path))) / "exports"
    return Path("var") / "exports"


def scan(store: Store, resource_type: str, since: str | None, until: str) -> Iterator[StoredVersion]:
    """The resources of a type as they were at ``until``, changed after ``since``, from the history.

    History is read newest first: the first version at or before ``until`` is the one exported
    (nothing if it is a deletion); later writes never leak into an export already running.
    """
    seen: set[str] = set()
    cursor = None
    while True:
        page = store.history(resource_type, None, since, cursor, _PAGE)
        for version in page.entries:
            if version.id in seen or version.last_updated > until:
                continue
            seen.add(version.id)
            if not version.deleted and version.resource is not None and (since is None or version.last_updated > since):
                yield version
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _group_members(store: Store, group_id: str) -> set[str]:
    group = store.read("Group", group_id)
    if group is None or group.deleted or group.resource is None:
        raise LookupError(f"Group/{group_id} is not known")
    members = set()
    for member in group.resource.get("member", []):
        if member.get("inactive") is True:
            continue
        reference = (member.get("entity") or {}).get("reference", "")
        rtype, _, id = reference.rpartition("/")
        if rtype.rsplit("/", 1)[-1] == "Patient" and id:
            members.add(id)
    return members


class _Files:
    """ndjson files of one type, a new part every _LINES_PER_FILE lines."""

    def __init__(self, directory: Path, resource_type: str, base: str, job_id: str):
        self.directory, self.type, self.base, self.job_id = directory, resource_type, base, job_id
        self.handle: Any = None
        self.lines = 0
        self.parts: list[dict] = []

    def write(self, resource: dict) -> None:
        if self.handle is None or self.lines == _LINES_PER_FILE:
            self.close()
            name = f"{self.type}-{len(self.parts) + 1}.ndjson"
            self.handle = open(self.directory / name, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self.parts.append({"type": self.type, "url": f"{self.base}/$export-file/{self.job_id}/{name}",
                               "count": 0})
            self.lines = 0
        self.handle.write(_encode(resource) + "\n")
        self.lines += 1
        self.parts[-1]["count"] += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def run(store: Store, job: dict, directory: Path) -> None:
    """Export ``job`` (claimed by this process) into directory/<job id>/, then record the manifest."""
    out = directory / job["id"]
    shutil.rmtree(out, ignore_errors=True)  # a resumed job starts again from nothing
    out.mkdir(parents=True, exist_ok=True)
    state = {"renewed": time.monotonic()}

    def checkpoint() -> None:
        if jobs.is_cancelled(store, job["id"]):
            raise Cancelled()
        if time.monotonic() - state["renewed"] > _RENEW_EVERY_S:
            job["lease_until"] = time.time() + LEASE_S
            jobs.save(store, job)
            state["renewed"] = time.monotonic()

    try:
        patients: set[str] | None = None
        if job["level"] == "group":
            patients = _group_members(store, job["group"])
        output: list[dict] = []
        for resource_type in job["types"]:
            files = _Files(out, resource_type, job["base"], job["id"])
            try:
                for n, stored in enumerate(_selected(store, job, resource_type, patients)):
                    files.write(stored.resource or {})
                    job["exported"] += 1
                    if n % 2000 == 1999:
                        checkpoint()
            finally:
                files.close()
            output.extend(files.parts)
            checkpoint()
    except Cancelled:
        shutil.rmtree(out, ignore_errors=True)
        jobs.forget(store, job["id"])
        return
    except LookupError as exc:
        _fail(store, job, str(exc))
        return
    except Exception as exc:  # the job fails, the process goes on; the trace goes to the log
        log.exception("export %s failed", job["id"])
        _fail(store, job, f"The export failed: {type(exc).__name__}")
        return
    if jobs.is_cancelled(store, job["id"]):
        shutil.rmtree(out, ignore_errors=True)
        jobs.forget(store, job["id"])
        return
    job.update(status=jobs.COMPLETED, output=output, completed=time.time())
    jobs.save(store, job)


def _fail(store: Store, job: dict, text: str) -> None:
    job.update(status=jobs.FAILED, error=[text], completed=time.time())
    jobs.save(store, job)


def _selected(store: Store, job: dict, resource_type: str, patients: set[str] | None) -> Iterator[StoredVersion]:
    """The resources of a type the job exports: as of its transaction time, since _since, in its compartment."""
    compartment = job["level"] in ("patient", "group")
    for stored in scan(store, resource_type, job.get("since"), job["transaction_time"]):
        if compartment:
            owners = patient_ids(resource_type, stored.resource)
            if not owners or (patients is not None and not owners & patients):
                continue
        yield stored


def sweep(store: Store, directory: Path, keep_s: float = KEEP_S) -> list[str]:
    """Delete the files and records of exports finished more than ``keep_s`` ago; their ids."""
    gone = jobs.expired(store, keep_s)
    for job_id in gone:
        shutil.rmtree(directory / job_id, ignore_errors=True)
        jobs.forget(store, job_id)
    return gone


def run_pending(store: Store, directory: Path) -> int:
    """Claim and run the jobs waiting in the store, one after the other; how many ran."""
    sweep(store, directory)
    ran = 0
    while True:
        job = jobs.claim(store, WORKER, LEASE_S)
        if job is None:
            return ran
        log.info("export %s: %s level, %d types", job["id"], job["level"], len(job["types"]))
        run(store, job, directory)
        ran += 1
