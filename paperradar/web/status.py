"""The radar's status: ``GET /status`` (a page) and ``GET /api/v1/status`` (JSON), over status.report().

Anyone may see whether the radar is current; error texts, alert messages and disk use are for the operator:
a request with ``Authorization: Bearer <admin_token>`` (a wrong token is refused, not quietly answered with
less), or a session signed in with ``operator_email``.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from .. import mail
from .. import status as status_mod
from .deps import current_user, services
from .security import check_bearer
from .templating import BAR, CHART_HEIGHT, GAP, render

log = logging.getLogger("paperradar.web")
router = APIRouter()



def is_operator(request: Request) -> bool:
    """Whether this request may see the operator's details. A request that sends a bearer token must send
    the right one (401/403 otherwise): a monitoring script with a stale token should fail, not see less."""
    settings = services(request).settings
    header = request.headers.get("authorization")
    if header is not None:
        refused = check_bearer(header, settings.admin_token)
        if refused == 401:
            raise HTTPException(401, "the status API takes Authorization: Bearer <admin token>",
                                headers={"WWW-Authenticate": "Bearer"})
        if refused:
            raise HTTPException(403, "wrong admin token, or none is configured (PAPERRADAR_ADMIN_TOKEN)")
        return True
    operator = mail.canonical_address(settings.operator_email)
    me = current_user(request)
    signed_in = mail.canonical_address(me.email) if me else None
    return bool(operator and signed_in and hmac.compare_digest(operator.encode(), signed_in.encode()))


def _report(request: Request) -> dict:
    svc = services(request)
    detail = is_operator(request)
    try:
        svc.refresh()  # see what another process indexed since
    except Exception as e:  # a damaged index: report() says so in its index section
        log.warning("status: index refresh: %s", e)
    with svc.store.time_limit(svc.settings.sql_time_limit_ms):
        return status_mod.report(svc.store, svc.settings, engine=svc.engine, detail=detail)


def chart(per_day: list[dict]) -> dict:
    """The geometry of a bar chart of ``per_day`` ([{"day", "added"}]): one bar per day, scaled to the
    busiest day; a day without papers is a thin line, so the 30 days stay visible."""
    top = max((d["added"] for d in per_day), default=0)
    bars = []
    for i, d in enumerate(per_day):
        h = round(d["added"] / top * CHART_HEIGHT, 1) if top else 0
        h = max(h, 1)
        bars.append({"x": i * (BAR + GAP), "y": CHART_HEIGHT - h, "width": BAR, "height": h,
                     "day": d["day"], "added": d["added"], "zero": d["added"] == 0})
    busiest = max(per_day, key=lambda d: (d["added"], d["day"])) if per_day else None
    return {"bars": bars, "width": len(per_day) * (BAR + GAP) - GAP, "height": CHART_HEIGHT, "top": top,
            "busiest": busiest}


@router.get("/api/v1/status", tags=["v1"], summary="Whether the radar is current")
def status_api(request: Request):
    """Per feed: followed, last success and last run, failures in a row, lag, when the next run is due and
    papers added per day over 30 days; arXiv's announcements, index lag, the digest outbox and open alerts.
    With the admin token (or signed in as the operator): error texts, alert messages and disk use."""
    return JSONResponse(_report(request))


@router.get("/status", include_in_schema=False)
def status_page(request: Request):
    report = _report(request)
    charts = {f["name"]: chart(f["per_day"]) for f in report["feeds"]}
    return render(request, "status.html", {"report": report, "charts": charts,
                                           "bytes": status_mod.human_bytes})
