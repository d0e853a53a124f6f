"""``POST /Bulk`` (RFC 7644 §3.7): operations in order, ``bulkId`` references resolved across
operations (§3.7.2), ``failOnErrors`` (§3.7.3), announced limits enforced (§3.7.4).

Each operation runs through the same service methods as a single request, so a bulk create is
exactly a POST. Bulk is not atomic (RFC 7644 does not require it): completed operations stay.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scim_core.discovery import BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD
from scim_core.errors import InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError, TooMany
from scim_core.http import ScimRequest, ScimResponse, json_response, parse_json
from scim_core.messages import BULK_REQUEST, BULK_RESPONSE


class Dispatcher(Protocol):
    """What Bulk needs of the service: run one request below the SCIM base, unauthenticated
    (the Bulk request itself was authenticated) and raising :class:`ScimError` on failure."""

    def dispatch(self, req: ScimRequest) -> ScimResponse: ...


_REF = re.compile(r"bulkId:([^\"/\s]+)")


class BulkOperation(BaseModel):
    """One operation of a BulkRequest (RFC 7644 §3.7); wire names are camelCase aliases."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    method: str
    path: str
    bulk_id: str | None = Field(default=None, alias="bulkId")
    version: str | None = None
    data: Any = None


class BulkRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    schemas: list[str] = Field(default_factory=lambda: [BULK_REQUEST])
    fail_on_errors: int | None = Field(default=None, alias="failOnErrors")
    operations: list[BulkOperation] = Field(alias="Operations")


def _refs(op: BulkOperation) -> set[str]:
    text = op.path + (json.dumps(op.data) if op.data is not None else "")
    return set(_REF.findall(text))


def _resolve(text: str, ids: dict[str, str]) -> str:
    return _REF.sub(lambda m: ids[m.group(1)], text)


def run_bulk(service: Dispatcher, req: ScimRequest) -> ScimResponse:
    if len(req.body) > BULK_MAX_PAYLOAD:
        raise PayloadTooLarge(f"bulk payload exceeds maxPayloadSize {BULK_MAX_PAYLOAD} bytes")
    body = parse_json(req)
    try:
        bulk = BulkRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidSyntax(f"invalid BulkRequest at {where!r}: {first['msg']}") from None
    if BULK_REQUEST not in bulk.schemas:
        raise InvalidSyntax(f"a BulkRequest must carry the schema {BULK_REQUEST}")
    if len(bulk.operations) > BULK_MAX_OPERATIONS:
        raise TooMany(f"more than maxOperations={BULK_MAX_OPERATIONS} operations")

    ids: dict[str, str] = {}
    # One transaction id for the events of every operation (RFC 8417 §2.2 "txn").
    req = replace(req, txn=req.txn or uuid.uuid4().hex)
    results: list[dict[str, Any] | None] = [None] * len(bulk.operations)
    pending = list(range(len(bulk.operations)))
    errors = 0
    limit = bulk.fail_on_errors
    while pending and (limit is None or limit <= 0 or errors < limit):
        # Run the first operation whose bulkId references are all known (§3.7.2: a client
        # may reference a resource created later in the request).
        ready = next((i for i in pending if _refs(bulk.operations[i]) <= ids.keys()), None)
        if ready is None:
            for i in pending:
                missing = sorted(_refs(bulk.operations[i]) - ids.keys())
                err = InvalidValue(f"unresolvable bulkId reference(s): {', '.join(missing)}")
                err.status = 409  # §3.7.2: circular / unknown references
                results[i] = _failed(bulk.operations[i], err)
                errors += 1
            pending = []
            break
        pending.remove(ready)
        op = bulk.operations[ready]
        outcome = _run_one(service, req, op, ids)
        results[ready] = outcome
        if int(outcome["status"]) >= 400:
            errors += 1
        elif op.bulk_id and op.method.upper() == "POST" and "location" in outcome:
            ids[op.bulk_id] = outcome["location"].rstrip("/").rsplit("/", 1)[-1]
    ops = [r for r in results if r is not None]
    return json_response(200, {"schemas": [BULK_RESPONSE], "Operations": ops})


def _run_one(
    service: Dispatcher, req: ScimRequest, op: BulkOperation, ids: dict[str, str]
) -> dict[str, Any]:
    method = op.method.upper()
    try:
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise InvalidValue(f"bulk method {op.method!r} is not POST, PUT, PATCH or DELETE")
        if method == "POST" and not op.bulk_id:
            raise InvalidValue("a bulk POST requires a bulkId (RFC 7644 §3.7)")
        path = _resolve(op.path, ids)
        data = json.loads(_resolve(json.dumps(op.data), ids)) if op.data is not None else None
        headers = {"content-type": "application/scim+json"}
        if op.version:
            headers["if-match"] = op.version
        sub = ScimRequest(
            method=method,
            path=path,
            base_url=req.base_url,
            query={},
            headers=headers,
            body=json.dumps(data).encode() if data is not None else b"",
            txn=req.txn,
        )
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0].lower() not in ("users", "groups") or len(parts) > 2:
            raise InvalidValue(f"bulk path {op.path!r} must be /Users[/id] or /Groups[/id]")
        resp = service.dispatch(sub)
    except ScimError as err:
        return _failed(op, err)
    result: dict[str, Any] = {"method": method, "status": str(resp.status)}
    if op.bulk_id:
        result["bulkId"] = op.bulk_id
    if "Location" in resp.headers:
        result["location"] = resp.headers["Location"]
    elif method != "POST":
        result["location"] = f"{req.base_url}/{path.strip('/')}"
    if "ETag" in resp.headers:
        result["version"] = resp.headers["ETag"]
    return result


def _failed(op: BulkOperation, err: ScimError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "method": op.method.upper(),
        "status": str(err.status),
        "response": err.to_body(),
    }
    if op.bulk_id:
        result["bulkId"] = op.bulk_id
    return result
