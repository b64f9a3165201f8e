"""The sandbox's HTTP API: the BankConnect v1 endpoints, under the same base path.

Point a client at ``http://127.0.0.1:<port>/bank-connect/v1`` exactly as it would point at
``https://portal.finbox.in/bank-connect/v1``. Sandbox-only routes live under
``/sandbox/`` (advance time, queue faults, inspect state, download statement files).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
from datetime import date, datetime

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.security import APIKeyHeader

from bankconnect_etl.sandbox import generator as gen
from bankconnect_etl.sandbox import models as m
from bankconnect_etl.sandbox.faults import FAULT_KINDS, FaultMiddleware, FaultState
from bankconnect_etl.sandbox.pdf import inspect, statement_pdf
from bankconnect_etl.sandbox.world import (
    SandboxConfig,
    Session,
    World,
    link_overview,
    payload,
    session_upload_body,
    sign_access_token,
    upload_identity,
)
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS, NET_BANKING_BANKS, is_known_bank

API_PREFIX = "/bank-connect/v1"
NOT_AUTHENTICATED = "Authentication credentials were not provided."
FORM_ONLY = (
    "This field must be present as a form field. "
    "Send request with content type x-www-form-urlencoded or form-data"
)

_api_key = APIKeyHeader(name="x-api-key", auto_error=False, description="API key, on every call.")
_server_hash = APIKeyHeader(
    name="server-hash",
    auto_error=False,
    description="Server hash, where the management page asks for it.",
)
_access_token = APIKeyHeader(
    name="ACCESS_TOKEN",
    auto_error=False,
    description="HMAC of TIMESTAMP, when the extra layer is enabled.",
)
_timestamp = APIKeyHeader(
    name="TIMESTAMP", auto_error=False, description="Unix seconds of the request."
)


def _json(obj: object, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _world(request: Request) -> World:
    return request.app.state.world


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _check_token(world: World, token: str | None, stamp: str | None) -> bool:
    secret = world.config.token_secret
    if secret is None:
        return True
    if not token or not stamp:
        return False
    try:
        skew = abs(time.time() - float(stamp))
    except ValueError:
        return False
    return skew <= world.config.token_max_skew_s and _same(token, sign_access_token(secret, stamp))


async def require_key(
    request: Request,
    key: str | None = Security(_api_key),
    token: str | None = Security(_access_token),
    stamp: str | None = Security(_timestamp),
) -> None:
    world = _world(request)
    if not _same(key, world.config.api_key) or not _check_token(world, token, stamp):
        raise HTTPException(401, NOT_AUTHENTICATED)


async def require_key_and_hash(
    request: Request,
    _: None = Depends(require_key),
    server_hash: str | None = Security(_server_hash),
) -> None:
    if not _same(server_hash, _world(request).config.server_hash):
        raise HTTPException(401, NOT_AUTHENTICATED)


def _ok(model: type, status: int = 200, **errors: type) -> dict:
    out: dict = {
        status: {"model": model},
        401: {"model": m.Detail, "description": NOT_AUTHENTICATED},
    }
    for code, err in errors.items():
        out[int(code.lstrip("e"))] = {"model": err}
    return out


def _multipart(required: list[str], **props: dict) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": required, "properties": props}
                }
            },
        }
    }


_FILE = {"type": "string", "format": "binary", "description": "the statement pdf file"}
_STR = {"type": "string"}


class BadBody(Exception):
    """A request body the API cannot read; each route answers it in its own error shape."""


async def _body(request: Request) -> dict:
    """Parameters from a JSON or form body (the API accepts both), or the query string."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            data = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError as exc:
            raise BadBody("JSON parse error - request body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise BadBody("Expected a JSON object")
        return data
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        return {k: v for k, v in form.multi_items()}
    return dict(request.query_params)


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    config = config or SandboxConfig()
    world = World(config)
    faults = FaultState(
        config.fault_rate,
        config.fault_kinds,
        config.slow_ms,
        config.retry_after_s,
        config.latency_ms,
        config.seed,
    )
    app = FastAPI(
        title="BankConnect API (sandbox)",
        version="v1",
        description="A local imitation of the FinBox BankConnect v1 REST API, "
        "deterministic from its seed.",
        docs_url=None,  # the Swagger page would load assets from a CDN
        redoc_url=None,
        servers=[{"url": "/", "description": "this sandbox"}],
    )
    app.state.world = world
    app.state.faults = faults
    app.add_middleware(FaultMiddleware, state=faults, api_prefix=API_PREFIX)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json({"detail": f"{where}: {first.get('msg', 'invalid request')}"}, 400)

    api = APIRouter(prefix=API_PREFIX)

    # ---------------------------------------------------------------- entities

    @api.post(
        "/entity/",
        status_code=201,
        responses=_ok(m.EntityCreated, 201, e400=m.Detail | m.FieldErrors),
        dependencies=[Depends(require_key)],
        summary="Create an entity for a link_id",
    )
    async def create_entity(request: Request) -> Response:
        try:
            body = await _body(request)
        except BadBody as exc:
            return _json({"detail": str(exc)}, 400)
        meta = body.get("meta_data")
        if meta is not None and not isinstance(meta, str):
            return _json({"meta_data": ["Not a valid string."]}, 400)
        link = body.get("link_id")
        header = world.create_entity(str(link) if link is not None else None, meta)
        return _json(
            {
                "entity_id": header.entity_id,
                "link_id": header.link_id,
                "meta_data": header.meta_data,
            },
            201,
        )

    @api.get(
        "/entity/",
        responses=_ok(m.EntityPage, e404=m.Detail),
        dependencies=[Depends(require_key_and_hash)],
        summary="List entities, 10 per page",
    )
    async def list_entities(
        request: Request,
        page: str | None = Query(None, description="page number, from 1"),
        link_id: str | None = Query(None, description="only entities with this link_id"),
    ) -> Response:
        try:
            number = int(page) if page is not None else 1
        except ValueError:
            number = 0
        filtered = bool(link_id)
        count = world.count(link_id, filtered)
        last = max(1, math.ceil(count / 10))
        if not 1 <= number <= last:
            return _json({"detail": "Invalid page."}, 404)
        url = request.url
        nxt = str(url.include_query_params(page=number + 1)) if number < last else None
        if number == 1:
            prev = None
        elif number == 2:
            prev = str(url.remove_query_params("page"))
        else:
            prev = str(url.include_query_params(page=number - 1))
        world.stats["entity_list"] += 1
        return _json(
            {
                "count": count,
                "next": nxt,
                "previous": prev,
                "results": world.page(number, link_id, filtered),
            }
        )

    @api.get(
        "/entity/link_overview/",
        responses=_ok(m.LinkOverview, e400=m.Detail),
        dependencies=[Depends(require_key)],
        summary="Entities of a link_id with their months and bank",
    )
    async def overview(link_id: str | None = Query(None)) -> Response:
        if not link_id:
            return _json({"detail": "link_id is required"}, 400)
        return _json(link_overview(world, link_id))

    def _entity(entity_id: str) -> int:
        pos = world.find(entity_id)
        if pos is None:
            raise HTTPException(404, "Not found.")
        return pos

    @api.get(
        "/entity/{entity_id}/",
        responses=_ok(m.EntitySummary, e404=m.Detail),
        dependencies=[Depends(require_key_and_hash)],
        summary="Entity detail (link_id from entity_id)",
    )
    async def entity_detail(entity_id: str) -> Response:
        return _json(world.summary(_entity(entity_id)))

    progress_models = {
        "accounts": m.AccountsResponse,
        "identity": m.IdentityResponse,
        "transactions": m.TransactionsResponse,
        "salary": m.SalaryResponse,
        "recurring_transactions": m.RecurringResponse,
        "lender_transactions": m.LenderResponse,
    }

    def _analysis_route(endpoint: str) -> None:
        async def handler(entity_id: str) -> Response:
            data, statuses = world.observe(_entity(entity_id), endpoint)
            world.stats[endpoint] += 1
            return _json(payload(endpoint, data, statuses))

        handler.__name__ = f"get_{endpoint}"
        api.add_api_route(
            f"/entity/{{entity_id}}/{endpoint}/",
            handler,
            methods=["GET"],
            responses=_ok(progress_models[endpoint], e404=m.Detail),
            dependencies=[Depends(require_key)],
            summary=f"{endpoint.replace('_', ' ').capitalize()} of an entity, with progress",
        )

    for endpoint in ANALYSIS_ENDPOINTS:
        _analysis_route(endpoint)

    @api.get(
        "/entity/{entity_id}/get_pdfs/",
        responses=_ok(m.GetPdfsResponse, e404=m.Detail),
        dependencies=[Depends(require_key_and_hash)],
        summary="Statement files of an entity",
    )
    async def get_pdfs(request: Request, entity_id: str) -> Response:
        pos = _entity(entity_id)
        data = world.data(pos)
        base = str(request.base_url).rstrip("/")
        out = []
        for s in data.statements:
            world.files[s.statement_id] = pos
            out.append(
                {
                    "statement_id": s.statement_id,
                    "bank_name": s.bank,
                    "pdf_password": s.pdf_password,
                    "pdf_url": world.pdf_url(base, s),
                    "account_id": s.account_id,
                }
            )
        world.stats["get_pdfs"] += 1
        return _json({"statements": out})

    @api.get(
        "/net_banking_health/",
        responses=_ok(list[m.BankHealth]),
        dependencies=[Depends(require_key)],
        summary="Net-banking health per bank",
    )
    async def net_banking_health() -> Response:
        return _json(world.bank_health())

    # ---------------------------------------------------------------- uploads

    def _upload_error(
        entity_id: str | None, message: str, status: int, http: int = 400
    ) -> Response:
        return _json({"entity_id": entity_id, "message": message, "status": status}, http)

    async def _upload(request: Request, bankless: bool) -> Response:
        try:
            form = await _body(request)
        except BadBody as exc:
            return _upload_error(None, str(exc), 0)
        entity_id = form.get("entity_id") or None
        if entity_id is not None and world.find(str(entity_id)) is None:
            return _upload_error(entity_id, "Entity not found", 0)
        if entity_id is None:  # the API creates the entity even when the upload then fails
            entity_id = world.create_entity(None, None).entity_id
        bank_name = (form.get("bank_name") or "").strip().lower() or None
        if not bankless and not bank_name:
            return _upload_error(entity_id, "bank_name is required", 0)
        if bank_name and not is_known_bank(bank_name):
            return _upload_error(entity_id, "Invalid bank name", 0)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _upload_error(entity_id, "file is required", 0)
        content = await upload.read()
        pos = world.find(entity_id)
        assert pos is not None
        sf = inspect(content)
        if not sf.is_pdf:
            return _upload_error(entity_id, "Statement format is not supported", 7)
        if sf.image_only or not sf.complete:
            return _upload_error(entity_id, "PDF is not parsable", 6)
        if not sf.password_ok(form.get("pdf_password")):
            return _upload_error(entity_id, "Incorrect password", 3)
        if sf.bank is None or not is_known_bank(sf.bank):
            if bankless:
                return _upload_error(
                    entity_id, "Unable to identify bank name from the statement", 5
                )
            sf_bank = bank_name
        else:
            sf_bank = sf.bank
        if bank_name and sf_bank != bank_name:
            return _upload_error(entity_id, f"Not {bank_name} bank statement", 4)
        seen = world.file_digests.setdefault(entity_id, set())
        if sf.digest in seen:
            return _upload_error(
                entity_id, "Duplicate statement: this file was already uploaded", 0
            )
        seen.add(sf.digest)
        assert sf_bank is not None
        password = form.get("pdf_password") if sf.password_sha256 else None
        plan = gen.upload_plan(
            world.seed, f"{entity_id}:{sf.account_key}", sf_bank, sf.months, world.today, password
        )
        data, stmt = world.upload(pos, plan)
        body: dict = {
            "bank_name": stmt.bank,
            "statement_id": stmt.statement_id,
            "entity_id": entity_id,
        }
        if request.query_params.get("identity", "").lower() == "true":
            body["date_range"] = {
                "from_date": stmt.from_date.isoformat(),
                "to_date": stmt.to_date.isoformat(),
            }
            body["is_fraud"] = False
            body["identity"] = upload_identity(data, stmt)
            body["fraud_type"] = None
        world.stats["upload"] += 1
        return _json(body)

    upload_props = {"file": _FILE, "bank_name": _STR, "entity_id": _STR, "pdf_password": _STR}

    @api.post(
        "/statement/upload/",
        responses=_ok(m.UploadResponse, e400=m.UploadError),
        dependencies=[Depends(require_key)],
        openapi_extra=_multipart(["file", "bank_name"], **upload_props),
        summary="Upload a statement PDF with its bank name",
    )
    async def upload_statement(request: Request, identity: str | None = Query(None)) -> Response:
        return await _upload(request, bankless=False)

    @api.post(
        "/statement/bankless_upload/",
        responses=_ok(m.UploadResponse, e400=m.UploadError),
        dependencies=[Depends(require_key)],
        openapi_extra=_multipart(
            ["file"], **{k: v for k, v in upload_props.items() if k != "bank_name"}
        ),
        summary="Upload a statement PDF and let the API detect the bank",
    )
    async def bankless_upload(request: Request, identity: str | None = Query(None)) -> Response:
        return await _upload(request, bankless=True)

    # ---------------------------------------------------------------- sessions

    def _session_error(code: str, message: str, http: int = 400) -> Response:
        return _json({"error": {"code": code, "message": message}}, http)

    def _ddmmyyyy(value: str) -> date | None:
        try:
            return datetime.strptime(value, "%d/%m/%Y").date()
        except (TypeError, ValueError):
            return None

    session_props = {
        "link_id": _STR,
        "api_key": _STR,
        "redirect_url": _STR,
        "from_date": _STR,
        "to_date": _STR,
        "logo_url": _STR,
        "bank_name": _STR,
        "mode": _STR,
        "mobile_number": _STR,
        "session_expiry": {"type": "integer"},
        "journey_mode": _STR,
        "accept_anything": {"type": "boolean"},
        "is_mobile_field_editable": {"type": "boolean"},
    }

    @api.post(
        "/session/",
        responses=_ok(m.SessionCreated, e400=m.ErrorEnvelope, e403=m.ErrorEnvelope),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["link_id", "api_key"],
                            "properties": session_props,
                        }
                    }
                },
            }
        },
        summary="Create an upload session for a link_id",
    )
    async def create_session(request: Request) -> Response:
        try:
            body = await _body(request)
        except BadBody as exc:
            return _session_error("INVALID_REQUEST", str(exc))
        key = body.get("api_key") or request.headers.get("x-api-key")
        if not _same(key, world.config.api_key) or not _check_token(
            world, request.headers.get("access_token"), request.headers.get("timestamp")
        ):
            return _json({"detail": NOT_AUTHENTICATED}, 401)
        link_id = body.get("link_id")
        if not link_id:
            return _session_error("MISSING_LINK_ID", "'link_id' is required.")
        raw_from, raw_to = body.get("from_date"), body.get("to_date")
        if bool(raw_from) != bool(raw_to):
            return _session_error("MISSING_DATE_FIELD", "'from_date' and 'to_date' are required.")
        start = end = None
        if raw_from:
            start, end = _ddmmyyyy(str(raw_from)), _ddmmyyyy(str(raw_to))
            if start is None or end is None:
                return _session_error(
                    "INVALID_DATE_FORMAT",
                    "Invalid 'from_date' or 'to_date' format. Use 'DD/MM/YYYY'.",
                )
            if start >= end:
                return _session_error(
                    "INVALID_DATE_RANGE", "'from_date' can't be greater or equal to 'to_date'."
                )
        bank = body.get("bank_name")
        if bank and not is_known_bank(str(bank)):
            return _session_error("INVALID_BANK_NAME", "Invalid bank identifier.")
        mode = body.get("mode")
        if mode:
            if not bank:
                return _session_error("MISSING_BANK_NAME", "'bank_name' is required with 'mode'.")
            if mode == "aa":
                return _session_error(
                    "MODE_NOT_ENABLED", "Specified mode not enabled. Contact FinBox Admin.", 403
                )
            if mode not in ("pdf", "online") or (
                mode == "online" and str(bank).upper() not in NET_BANKING_BANKS
            ):
                return _session_error(
                    "MODE_NOT_AVAILABLE", "Specified mode not available for this bank."
                )
        header = world.create_entity(str(link_id), None)
        session_id = gen.uuid_for(world.seed, "session", len(world.sessions))
        world.sessions[session_id] = Session(session_id, str(link_id), header.entity_id, start, end)
        redirect = f"{str(request.base_url).rstrip('/')}/sandbox/session/?session_id={session_id}"
        return _json({"session_id": session_id, "redirect_url": redirect})

    @api.post(
        "/statement/upload_session/",
        responses=_ok(m.SessionUploadResponse, e400=m.SessionUploadError),
        dependencies=[Depends(require_key)],
        openapi_extra=_multipart(
            ["file", "bank_name", "session_id", "upload_type"],
            file=_FILE,
            bank_name=_STR,
            session_id=_STR,
            upload_type={"type": "string", "enum": ["PDF", "BASE64"]},
            pdf_password=_STR,
        ),
        summary="Upload a statement into a session",
    )
    async def upload_session(request: Request) -> Response:
        def err(code: str, message: str, http: int = 400, session_id: str = "") -> Response:
            return _json(
                {
                    "session_id": session_id,
                    "statement_id": "",
                    "error": {"code": code, "message": message},
                },
                http,
            )

        if not request.headers.get("content-type", "").startswith(
            ("multipart/form-data", "application/x-www-form-urlencoded")
        ):
            return err("INVALID_FILE_OBJECT", FORM_ONLY)
        form = await _body(request)

        session = world.sessions.get(str(form.get("session_id") or ""))
        if session is None:
            return err("SESSION_NOT_FOUND", "The provided Session ID is invalid")
        sid = session.session_id
        kind = str(form.get("upload_type") or "PDF").upper()
        raw = form.get("file")
        if raw is None or raw == "":
            return err("MISSING_FILE_OBJECT", "This file object is required", session_id=sid)
        if kind == "BASE64":
            try:
                content = base64.b64decode(
                    raw if isinstance(raw, str) else await raw.read(), validate=True
                )
            except (binascii.Error, ValueError):
                return err("INVALID_BASE_64", "Invalid Base 64 string", session_id=sid)
        elif kind == "PDF" and not isinstance(raw, str):
            content = await raw.read()
        else:
            return err("INVALID_FILE_OBJECT", "File object is invalid", session_id=sid)
        bank = str(form.get("bank_name") or "").lower()
        if not is_known_bank(bank):
            return err("INVALID_BANK_NAME", "Invalid bank identifier.", session_id=sid)
        sf = inspect(content)
        if not sf.is_pdf or not sf.complete:
            return err(
                "STATEMENT_UNSUPPORTED_FORMAT",
                "The statement format is not supported",
                session_id=sid,
            )
        if sf.image_only:
            return err("PDF_IS_IMAGE", "Scanned images are not supported", session_id=sid)
        if not sf.password_ok(form.get("pdf_password")):
            return err("PASSWORD_INCORRECT", "The provided password is incorrect", session_id=sid)
        if sf.bank and sf.bank != bank:
            return err("BANK_NAME_MISMATCH", f"Not {bank} bank statement", session_id=sid)
        pos = world.find(session.entity_id)
        assert pos is not None
        password = form.get("pdf_password") if sf.password_sha256 else None
        plan = gen.upload_plan(
            world.seed,
            f"{session.entity_id}:{sf.account_key}",
            bank,
            sf.months,
            world.today,
            password,
        )
        if session.from_date and session.to_date:
            last = gen.add_months(plan.start, sf.months)
            if last <= session.from_date or plan.start > session.to_date:
                return err(
                    "OUT_OF_DATE_RANGE", "No transactions in expected date range", session_id=sid
                )
        seen = world.file_digests.setdefault(session.entity_id, set())
        if sf.digest in seen:
            return err(
                "STATEMENT_DUPLICATE", "A duplicate statement has been detected", session_id=sid
            )
        seen.add(sf.digest)
        data, stmt = world.upload(pos, plan)
        world.stats["upload"] += 1
        return _json(session_upload_body(data, stmt, sid))

    app.include_router(api)
    _sandbox_routes(app, world, faults)
    app.openapi = lambda: _without_422(app)  # type: ignore[method-assign]
    return app


def _without_422(app: FastAPI) -> dict:
    """FastAPI declares 422 on every operation; this API answers bad input with 400."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
        )
        for path in schema["paths"].values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    ref = {"$ref": "#/components/schemas/Detail"}
                    responses["400"] = {
                        "description": "Bad request",
                        "content": {"application/json": {"schema": ref}},
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _sandbox_routes(app: FastAPI, world: World, faults: FaultState) -> None:
    admin = APIRouter(prefix="/sandbox", tags=["sandbox only"])

    @admin.get("/ping", summary="Liveness, with no auth and no data")
    async def ping() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @admin.post("/advance", summary="Move time: add entities and statements")
    async def advance(
        new_entities: int = Query(0, ge=0, le=1_000_000),
        new_statements: int = Query(0, ge=0, le=1_000_000),
    ) -> Response:
        return _json(world.advance(new_entities, new_statements))

    @admin.get("/faults", summary="Fault injection settings and counts")
    async def get_faults() -> Response:
        return _json(faults.describe())

    @admin.post("/faults", summary="Change fault injection; `next` queues exact faults")
    async def set_faults(request: Request) -> Response:
        try:
            body = await _body(request)
        except BadBody as exc:
            return _json({"detail": str(exc)}, 400)
        kinds = body.get("kinds")
        queued = body.get("next") or []
        bad = [k for k in [*(kinds or []), *queued] if k not in FAULT_KINDS]
        if bad:
            return _json(
                {
                    "detail": f"unknown fault kind {bad[0]!r}; "
                    f"expected one of {', '.join(FAULT_KINDS)}"
                },
                400,
            )
        if "rate" in body:
            rate = float(body["rate"])
            if not 0 <= rate <= 1:
                return _json({"detail": "rate must be between 0 and 1"}, 400)
            faults.rate = rate
        if kinds:
            faults.kinds = tuple(kinds)
        for key in ("slow_ms", "latency_ms"):
            if key in body:
                setattr(faults, key, float(body[key]))
        faults.queued.extend(queued)
        return _json(faults.describe())

    @admin.get("/state", summary="Counts of what the sandbox holds and served")
    async def state() -> Response:
        return _json(
            {
                "seed": world.seed,
                "entities": len(world.order),
                "created": len(world.created),
                "advances": world.advances,
                "today": world.today.isoformat(),
                "served": dict(world.stats),
                "processing_polls": world.config.processing_polls,
                "processing_seconds": world.config.processing_seconds,
            }
        )

    @admin.get("/files/{statement_id}.pdf", summary="Download a statement file by its signed URL")
    async def file(statement_id: str, request: Request) -> Response:
        q = request.query_params
        try:
            issued = int(q.get("X-Amz-Date", ""))
        except ValueError:
            issued = 0
        pos = world.files.get(statement_id)
        expired = time.time() > issued + 3600
        if (
            pos is None
            or expired
            or not _same(q.get("X-Amz-Signature"), world.sign_pdf(statement_id, issued))
        ):
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Request has expired</Message></Error>"
            )
            return Response(body, status_code=403, media_type="application/xml")
        stmt = world.data(pos).statement(statement_id)
        assert stmt is not None
        months = max(
            1,
            (stmt.to_date.year - stmt.from_date.year) * 12
            + stmt.to_date.month
            - stmt.from_date.month
            + 1,
        )
        pdf = statement_pdf(
            bank=stmt.bank, months=months, password=stmt.pdf_password, nonce=statement_id
        )
        return Response(pdf, media_type="application/pdf")

    @admin.get(
        "/session/", response_class=HTMLResponse, summary="Where a session's redirect_url lands"
    )
    async def session_page(session_id: str = "") -> str:
        known = session_id in world.sessions
        return (
            "<!doctype html><title>BankConnect sandbox</title><p>"
            + (
                "Session found. Upload statements with "
                "POST /bank-connect/v1/statement/upload_session/."
                if known
                else "Unknown session."
            )
            + "</p>"
        )

    app.include_router(admin)
