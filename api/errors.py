"""Exception tree of the API and how each maps to an HTTP answer."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bondwatch.errors import BondWatchError


class ApiError(BondWatchError):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    status = 404


class Invalid(ApiError):
    """The body is well-formed JSON but makes no sense (unknown reference, bad geometry)."""

    status = 422


class Conflict(ApiError):
    status = 409


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class ErrorOut(BaseModel):
    """The body of every refusal: what is wrong, in words."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(ErrorOut):
    """A 422: ``detail`` names the field; ``errors`` lists every field when the request did not parse."""

    errors: list[FieldError] | None = None


_DESCRIPTIONS = {
    400: "The body is not JSON text (e.g. not UTF-8)",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token's role is too low for this",
    404: "Nothing registered under this key",
    409: "Conflicts with what is registered (e.g. it exists, or something refers to it)",
    503: "Cannot be served now: something it needs is missing or exhausted (the detail says what)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the refusals a route can answer with (their body is :class:`ErrorOut`)."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse({"detail": _describe(errors), "errors": errors}, status_code=422)

    @app.exception_handler(psycopg.DataError)
    async def _unstorable(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # SQLSTATE class 22: a value the database cannot take although the request's checks passed, e.g. a
        # temperature of 1e-310 (in range, but no `real` holds it) or a NUL character in a text. The request's
        # fault, so a 422 rather than a 500; the transaction has been rolled back.
        message = exc.diag.message_primary or str(exc)
        return JSONResponse({"detail": f"a value in the request cannot be stored: {message}"}, status_code=422)

    _document_validation_errors(app)


def _document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents every 422 as its own HTTPValidationError (``detail``: a list); ours is ValidationErrorOut."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate().setdefault("components", {}).setdefault("schemas", {})
            ours = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(ours.pop("$defs", {}))
            schemas["HTTPValidationError"] = {**ours, "title": "HTTPValidationError"}
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to adjust the schema
