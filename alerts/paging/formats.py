"""A page in each channel's shape: e-mail, and webhooks as plain JSON, Slack-compatible, WeCom or DingTalk robot
markdown. Pure: the sentence comes from :func:`alerts.rules.say.say`, the time is an argument.

Every shape names the ``alert_id`` and holds the act link (one-click acknowledge) and the board link.
DingTalk robots with "additional signing" want ``timestamp`` (ms) and ``sign`` in the query string, where
``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote_plus

from alerts.rules.say import Said, as_text
from server.core.notify_config import Person

WORDS = {
    "en": {"ack": "Acknowledge", "board": "Open the board", "alert": "Alert", "level": "level"},
    "zh": {"ack": "确认收到", "board": "打开看板", "alert": "告警", "level": "级别"},
}


def _words(person: Person) -> dict[str, str]:
    return WORDS.get(person.language, WORDS["en"])


def plain(text: str) -> str:
    """Words from phones inside robot markdown: one line, and no link of their own (a guide's "[Acknowledge](...)"
    must not pass for ours). The robots' markdown has no reliable escape, so a link is broken apart instead."""
    return " ".join(text.split()).replace("](", "] (").replace("**", "* *")


def slack_escape(text: str) -> str:
    """Slack's mrkdwn escaping (its documented three), so phone text is never a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown(said: Said, alert_id: str, act_url: str, board_url: str, person: Person) -> str:
    w = _words(person)
    lines = [f"**{plain(said.sentence)}**", ""]
    for f in said.fields:
        text = f"[{plain(f.text)}]({f.href})" if f.href else plain(f.text)
        lines.append(f"- {f.label}: {text}")
    lines += ["", f"[{w['ack']}]({act_url}) · [{w['board']}]({board_url})", "", f"{w['alert']} `{alert_id}`"]
    return "\n".join(lines)


def dingtalk_url(url: str, secret: str | None, now: float) -> str:
    if not secret:
        return url
    timestamp = str(int(now * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def webhook_request(person: Person, alert: dict[str, Any], said: Said, level: int, act_url: str, board_url: str,
                    now: float) -> tuple[str, dict[str, Any]]:
    """(the URL to post to, the JSON body) for the person's webhook in their format."""
    assert person.webhook
    alert_id = str(alert["alert_id"])
    text = markdown(said, alert_id, act_url, board_url, person)
    if person.format == "slack":
        w = _words(person)
        sentence = slack_escape(" ".join(said.sentence.split()))
        fields = "\n".join(f"*{f.label}:* " + (f"<{f.href}|{slack_escape(f.text)}>" if f.href else
                                                 slack_escape(f.text)) for f in said.fields)
        return person.webhook, {
            "text": f"{sentence} ({alert_id})",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{sentence}*\n{fields}"}},
                {"type": "actions", "block_id": f"tourpulse:{alert_id}", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": w["ack"]}, "url": act_url,
                     "style": "danger"},
                    {"type": "button", "text": {"type": "plain_text", "text": w["board"]}, "url": board_url}]},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{w['alert']} `{alert_id}` · "
                                                                            f"{w['level']} {level}"}]},
            ]}
    if person.format == "wecom":
        return person.webhook, {"msgtype": "markdown", "markdown": {"content": text}}
    if person.format == "dingtalk":
        return dingtalk_url(person.webhook, person.secret, now), {
            "msgtype": "markdown", "markdown": {"title": said.sentence[:64], "text": text}}
    return person.webhook, {"alert": alert, "level": level, "person": person.id, "act_url": act_url,
                            "board_url": board_url, "text": as_text(said)}


def email_message(person: Person, alert: dict[str, Any], said: Said, level: int, act_url: str, board_url: str,
                  from_addr: str, job_id: str) -> EmailMessage:
    assert person.email
    w = _words(person)
    alert_id = str(alert["alert_id"])
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = person.email
    # the sentence holds a guide's or traveller's words: one line (a header may not break), of a readable length
    sentence = " ".join(said.sentence.split())
    msg["Subject"] = f"[tourpulse {alert.get('severity')}] {sentence[:160]} ({alert_id})"
    # the job's identity: a mail system that sees the same page twice (a resend after a crash) can tell
    msg["Message-ID"] = f"<{job_id.replace(':', '.')}@tourpulse>"
    msg["X-Tourpulse-Alert"] = alert_id
    msg.set_content(f"{as_text(said)}\n\n{w['ack']}: {act_url}\n{w['board']}: {board_url}\n\n"
                    f"{w['alert']} {alert_id}, {w['level']} {level}\n")
    return msg
