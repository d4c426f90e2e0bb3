"""The sender: works the page queue in the watcher process, by e-mail (SMTP, STARTTLS when offered) and webhooks.

Each claimed page is one attempt: said in the reader's language (:func:`alerts.rules.say.say`), shaped for its
channel (:mod:`.formats`), delivered with a timeout, and finished in one Lua step with its result. A failure is
retried with exponential backoff for up to ``retry_for`` (:func:`alerts.rules.rota.next_attempt`); a webhook
answering 4xx is not retried for the whole hour. Webhooks carry ``Idempotency-Key: <job id>``: the same for every
attempt of one page, so a receiver can drop the one resend a crash may cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
import time
from email.message import EmailMessage

import httpx
from redis.exceptions import RedisError

from alerts.paging.formats import email_message, webhook_request
from alerts.paging.queue import Claimed, PageQueue
from alerts.rules.rota import classify_status, next_attempt
from alerts.rules.say import say
from server.core.act_links import act_url
from server.core.metrics import Registry
from server.core.notify_config import Person, SmtpServer
from server.core.settings import Settings

log = logging.getLogger(__name__)

POLL = 0.2           # how often the queue is looked at without a wake-up (retries, other watchers' pages)
IN_FLIGHT = 32       # pages being delivered at once by one sender
PAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class Outcome(Exception):
    """A failed attempt: ``kind`` temporary or permanent, ``result`` what the audit says."""

    def __init__(self, kind: str, result: str) -> None:
        super().__init__(result)
        self.kind, self.result = kind, result


def send_mail(server: SmtpServer, msg: EmailMessage, timeout: float) -> None:
    """Blocking (run in a thread): one SMTP exchange, STARTTLS when the server offers it."""
    smtp_class = smtplib.SMTP_SSL if server.ssl else smtplib.SMTP
    with smtp_class(server.host, server.port, timeout=timeout) as smtp:
        smtp.ehlo()
        if not server.ssl and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if server.user:
            smtp.login(server.user, server.password or "")
        smtp.send_message(msg)


class Sender:
    def __init__(self, queue: PageQueue, settings: Settings, metrics: Registry) -> None:
        self.queue = queue
        self.settings = settings
        self.notify = settings.notify
        self.wake = asyncio.Event()
        self._gate = asyncio.Semaphore(IN_FLIGHT)
        self._running = True
        self._inflight: set[asyncio.Task[None]] = set()
        self.http = httpx.AsyncClient(timeout=self.notify.timeout, follow_redirects=False)
        self.pages = metrics.counter("tourpulse_pages_total", "Page attempts by channel and result "
                                     "(sent, retried, failed)", ("channel", "result"))
        self.latency = metrics.histogram("tourpulse_page_seconds", "From a page being queued to its delivery",
                                         PAGE_BUCKETS, ("channel",))

    async def run(self) -> None:
        while self._running:
            self.wake.clear()
            try:
                free = IN_FLIGHT - len(self._inflight)
                claimed = await self.queue.claim(time.time(), free) if free > 0 else []
            except RedisError as exc:
                log.warning("paging: claiming pages failed: %s", exc)
                claimed = []
            except Exception:  # noqa: BLE001 - a bug must not stop sending for good: say it, and go on
                log.exception("paging: claiming pages failed")
                claimed = []
            for page in claimed:
                task = asyncio.create_task(self._attempt(page), name=f"page-{page.job_id}")
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # more may be due already
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):
                    await self.wake.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("paging: %s failed: %r", task.get_name(), task.exception())

    async def stop(self) -> None:
        self._running = False
        self.wake.set()
        for task in list(self._inflight):
            task.cancel()  # its claim stays: another sender (or this one, restarted) sends it after the lease
        if self._inflight:
            await asyncio.wait(self._inflight)
        await self.http.aclose()

    async def _attempt(self, page: Claimed) -> None:
        person = self.notify.people.get(page.person)
        try:
            if person is None:
                raise Outcome("permanent", "no such person in [notify]")
            if time.time() > page.queued_at + self.notify.retry_for:
                # claimed again and again without an attempt finishing (senders dying mid-delivery): give it up
                raise Outcome("permanent", "expired")
            await self.deliver(page, person)
        except Outcome as failed:
            await self._failed(page, failed)
            return
        except Exception as exc:  # noqa: BLE001 - a bug saying one page must not leave it claimed forever
            log.exception("paging: %s could not be sent", page.job_id)
            await self._failed(page, Outcome("permanent", f"error: {type(exc).__name__}"))
            return
        now = time.time()
        if await self.queue.finish(page, "done", "sent", now, name=self._name(page)):
            self.pages.inc(page.channel, "sent")
            self.latency.observe(max(0.0, now - page.queued_at), page.channel)

    async def _failed(self, page: Claimed, failed: Outcome) -> None:
        now = time.time()
        due = next_attempt(failed.kind, page.attempt, page.queued_at, now, self.notify)
        if due is None:
            if await self.queue.finish(page, "failed", failed.result, now, name=self._name(page)):
                self.pages.inc(page.channel, "failed")
            log.warning("paging: gave up %s after %s attempt(s): %s", page.job_id, page.attempt, failed.result)
        elif await self.queue.finish(page, "queued", failed.result, now, due, name=self._name(page)):
            self.pages.inc(page.channel, "retried")

    def _name(self, page: Claimed) -> str:
        person = self.notify.people.get(page.person)
        return person.name if person else page.person

    async def deliver(self, page: Claimed, person: Person) -> None:
        now = time.time()
        said = say(page.alert, person.language, person.timezone, now)
        alert_id = str(page.alert["alert_id"])
        link = act_url(self.notify.base_url, self.settings.secret, alert_id, person.id, now)
        board = f"{self.notify.base_url}/board"
        async with self._gate:
            if page.channel == "webhook" and person.webhook:
                url, body = webhook_request(person, page.alert, said, page.level, link, board, now)
                await self._post(url, body, page.job_id)
            elif page.channel == "email" and person.email and self.notify.smtp:
                msg = email_message(person, page.alert, said, page.level, link, board, self.notify.from_addr,
                                    page.job_id)
                await self._mail(self.notify.smtp, msg)
            else:
                raise Outcome("permanent", f"{person.id} has no {page.channel} configured")

    async def _post(self, url: str, body: dict[str, object], job_id: str) -> None:
        try:
            resp = await self.http.post(url, json=body, headers={"Idempotency-Key": job_id})
        except httpx.TimeoutException:
            raise Outcome("temporary", "timeout") from None
        except httpx.HTTPError as exc:
            raise Outcome("temporary", f"error: {type(exc).__name__}") from None
        kind = classify_status(resp.status_code)
        if kind != "sent":
            raise Outcome(kind, f"http {resp.status_code}")

    async def _mail(self, server: SmtpServer, msg: EmailMessage) -> None:
        try:
            # the thread is bounded by smtplib's own socket timeout; this one bounds the whole exchange
            async with asyncio.timeout(self.notify.timeout * 3):
                await asyncio.to_thread(send_mail, server, msg, self.notify.timeout)
        except TimeoutError:
            raise Outcome("temporary", "timeout") from None
        except smtplib.SMTPResponseException as exc:
            kind = "permanent" if 500 <= exc.smtp_code < 600 else "temporary"
            raise Outcome(kind, f"smtp {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Outcome("temporary", f"error: {type(exc).__name__}") from None
