"""Traceability: one tag's story from source to destination (源头可溯、去向可查)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.auth import Viewer
from api.db import Conn
from api.errors import error_responses
from api.ids import EpcPath
from api.trace import epcis, timeline

router = APIRouter(prefix="/trace", tags=["trace"], responses=error_responses(401))

# The media type of JSON-LD (EPCIS 2.0 §12.2 names it for EPCIS documents).
JSON_LD = "application/ld+json"


@router.get("/{epc}", response_model=None, responses=error_responses(404))
async def trace(
    epc: EpcPath,
    who: Viewer,
    conn: Conn,
    request: Request,
    fmt: Annotated[
        Literal["json", "epcis"],
        Query(alias="format", description="json: the timeline; epcis: an EPCIS 2.0 JSON-LD document"),
    ] = "json",
) -> dict[str, Any] | JSONResponse:
    """The tag's registry facts, reads, gate passages, release notes, rides and alerts, oldest first.

    The EPC is hex in any case. 404 when the tag is unknown: not registered, never read, and on no
    passage or release note.
    """
    story = await timeline.assemble(conn, epc)
    if fmt == "epcis":
        settings = request.app.state.settings
        return JSONResponse(epcis.document(story, settings.site, settings.api_timezone), media_type=JSON_LD)
    return story
