"""``/act/<signed>``: the one-click acknowledge page a page links to (contract §12).

GET shows the alert, said in the person's language, with one button; POST acknowledges it as that person (once:
a second POST, or a double click, changes nothing). The link is the credential: signed by the server's secret, for
one alert and one person, for 24 h. A forged link answers 403, an expired one 410, each with a page that says so,
and never acknowledges anything. Same CSP and style as the board, except that this page's one form posts to itself.
"""

from __future__ import annotations

import hashlib
import html
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from alerts.rules.say import Said, say
from alerts.store import AlertStore
from guide_app_api.errors import ProtocolError
from server.core.act_links import ActLink, ExpiredLink, LinkError, verify_link
from server.core.settings import Settings
from server.web.board import SECURITY_HEADERS

HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
    "form-action 'none'", "form-action 'self'"), "Cache-Control": "no-store"}

TEXT = {
    "en": {"title": "Acknowledge alert", "ack": "Acknowledge", "board": "Open the board", "done": "Acknowledged",
           "done_by": "You ({person}) acknowledged this alert; escalation has stopped.",
           "already": "This alert is already {status}.", "forged": "This link is not valid.",
           "forged_more": "It may have been changed or cut short. Open the board instead.",
           "expired": "This link has expired.", "expired_more": "Links work for 24 hours. Open the board instead.",
           "gone": "This alert no longer exists.", "status": "Status", "as": "You act as {person}."},
    "zh": {"title": "确认告警", "ack": "确认收到", "board": "打开看板", "done": "已确认",
           "done_by": "您（{person}）已确认此告警，升级已停止。", "already": "此告警已是{status}状态。",
           "forged": "此链接无效。", "forged_more": "链接可能被修改或截断，请打开看板处理。",
           "expired": "此链接已过期。", "expired_more": "链接有效期为 24 小时，请打开看板处理。",
           "gone": "此告警已不存在。", "status": "状态", "as": "您以 {person} 的身份操作。"},
}
STATUS_WORDS = {"zh": {"open": "未处理", "acknowledged": "已确认", "resolved": "已解决"}}


def _page(lang: str, title: str, body: str, status: int) -> HTMLResponse:
    doc = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
           '<meta name="viewport" content="width=device-width, initial-scale=1">'
           '<meta name="referrer" content="no-referrer"><meta name="color-scheme" content="light dark">'
           f'<title>tourpulse — {html.escape(title)}</title><link rel="icon" href="data:,">'
           '<link rel="stylesheet" href="/board/static/board.css"><link rel="stylesheet" href="/board/static/act.css">'
           f'</head><body class="act-page"><main class="act">{body}</main></body></html>')
    return HTMLResponse(doc, status_code=status, headers=HEADERS)


def _said_html(said: Said) -> str:
    rows = []
    for f in said.fields:
        text = html.escape(f.text)
        if f.href:
            text = f'<a href="{html.escape(f.href)}" rel="noopener noreferrer">{text}</a>'
        rows.append(f"<dt>{html.escape(f.label)}</dt><dd>{text}</dd>")
    return f'<h1 class="act-sentence">{html.escape(said.sentence)}</h1><dl class="act-fields">{"".join(rows)}</dl>'


def _person(settings: Settings, link: ActLink) -> tuple[str, str, str]:
    """(language, time zone, name) of the link's person (English and UTC if no longer configured)."""
    person = settings.notify.people.get(link.person)
    if person is None:
        return "en", "UTC", link.person
    return person.language, person.timezone, person.name


def _refused(exc: LinkError) -> HTMLResponse:
    # the link's person is unknown here (or not to be believed): both languages
    expired = isinstance(exc, ExpiredLink)
    key = "expired" if expired else "forged"
    body = "".join(f'<section lang="{lang}"><h1>{TEXT[lang][key]}</h1><p>{TEXT[lang][key + "_more"]}</p></section>'
                   for lang in ("en", "zh"))
    body += '<p><a class="btn" href="/board">Board · 看板</a></p>'
    return _page("en", TEXT["en"][key], body, 410 if expired else 403)


async def act_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    store: AlertStore = request.app.state.alert_store
    now = time.time()
    signed = request.path_params["signed"]
    try:
        link = verify_link(settings.secret, signed, now)
    except LinkError as exc:
        return _refused(exc)
    lang, zone, name = _person(settings, link)
    t = TEXT[lang]
    notice = ""
    if request.method == "POST":
        notice = await _acknowledge(store, link, signed, now, t, name)
    alert = await store.get(link.alert_id)
    if alert is None:
        return _page(lang, t["gone"], f"<h1>{t['gone']}</h1>", 404)
    return _page(lang, t["title"], _body(alert, link, lang, zone, name, notice, now), 200)


async def _acknowledge(store: AlertStore, link: ActLink, signed: str, now: float, t: dict[str, str],
                       name: str) -> str:
    # once per link: a double click, or the page reloaded after POST, replays the first answer
    token = "link:" + hashlib.sha256(signed.encode()).hexdigest()[:32]
    try:
        await store.act(link.alert_id, "ack", f"link:{link.person}", now, regions_check=lambda _r: True,
                        token=token)
    except ProtocolError:  # not found (shown below) or resolved (a conflict: the status says so)
        return ""
    return f'<p class="act-done" role="status">{html.escape(t["done_by"].format(person=name))}</p>'


def _body(alert: dict[str, Any], link: ActLink, lang: str, zone: str, name: str, notice: str, now: float) -> str:
    t = TEXT[lang]
    status = str(alert.get("status"))
    status_word = STATUS_WORDS.get(lang, {}).get(status, status)
    parts = [notice, _said_html(say(alert, lang, zone, now)),
             f'<p class="act-status" data-status="{html.escape(status)}">{t["status"]}: '
             f"{html.escape(status_word)} · <code>{html.escape(str(alert['alert_id']))}</code></p>"]
    if status == "open":
        parts.append(f'<form method="post"><p>{html.escape(t["as"].format(person=name))}</p>'
                     f'<button type="submit" class="btn btn-primary act-ack">{t["ack"]}</button></form>')
    elif not notice:
        parts.append(f'<p class="act-already">{html.escape(t["already"].format(status=status_word))}</p>')
    parts.append(f'<p><a class="btn" href="/board">{t["board"]}</a></p>')
    return "".join(parts)


routes: list[Any] = [Route("/act/{signed}", act_page, methods=["GET", "POST"])]
