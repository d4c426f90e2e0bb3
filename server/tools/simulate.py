"""``tourpulse simulate``: a believable day driven against a running server over real WebSockets.

Registers the tours (and pool resources) of a seeded :mod:`server.tools.scenario` world over HTTP, gives every
traveller and guide a token, connects every phone, then sends the scenario's actions at the requested rate
while a share of phones lose their network and come back. Prints a progress line a second on stderr and a
summary on stdout; exits 0 only when every message sent got an answer (1 otherwise, 2 when setup failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from server.core import tokens
from server.core.settings import ConfigError, load_settings, parse_duration
from server.tools.loadclient import ClientError, HandshakeRefused, PhoneClient, percentile
from server.tools.scenario import Action, Person, World, actions, build_world, iso_utc

RETRY_CODES = ("rate_limited", "unavailable")  # refused, nothing stored: the same id may be sent again
MAX_RETRIES = 3
HTTP_CONCURRENCY = 8
CONNECT_CONCURRENCY = 64  # handshakes in flight: the server accepts ~1,000-1,600 a second
NOTICE_READERS = 0.7  # share of phones whose owner opens a notice (and so confirms it)


class SetupError(RuntimeError):
    """The server could not be prepared for the run (unreachable, refused a token, rejected a tour)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tourpulse simulate", description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    p.add_argument("--tours", type=int, default=40)
    p.add_argument("--travellers", type=int, default=25, help="travellers per tour, on average")
    p.add_argument("--regions", type=int, default=4)
    p.add_argument("--rate", type=float, default=50.0, help="messages per second, all phones together")
    p.add_argument("--duration", type=parse_duration, default=60.0, help='e.g. "60s", "10m"')
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="JSON text frames instead of MessagePack")
    p.add_argument("--reconnect-share", type=float, default=0.05, help="share of phones that drop mid-run")
    p.add_argument("--admin-token", help="else minted locally from the server's secret")
    p.add_argument("--pool", action=argparse.BooleanOptionalAction, default=True,
                   help="register emergency-pool resources per region")
    p.add_argument("--run-id", help="prefix of message ids (default: new each run, so a rerun stores anew)")
    p.add_argument("--grace", type=parse_duration, default=15.0, help="how long to wait for late answers")
    p.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


# --- HTTP setup (stdlib: httpx is only a test dependency) ------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


def _request(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=15) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SetupError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


async def _limited(calls: list[tuple[str, str, str, Any]],
                   limit: int = HTTP_CONCURRENCY) -> list[tuple[int, Any]]:
    gate = asyncio.Semaphore(limit)

    async def one(call: tuple[str, str, str, Any]) -> tuple[int, Any]:
        async with gate:
            return await asyncio.to_thread(_request, *call)

    return await asyncio.gather(*(one(c) for c in calls))


async def register(base: str, admin: str, world: World, pool: bool) -> int:
    """PUT every tour (and resource); returns how many resources were registered."""
    results = await _limited([("PUT", f"{base}/api/tours/{t.tour_id}", admin, t.doc()) for t in world.tours])
    for tour, (status, body) in zip(world.tours, results, strict=True):
        if not 200 <= status < 300:
            raise SetupError(f"PUT /api/tours/{tour.tour_id}: HTTP {status} {body}")
    if not pool:
        return 0
    results = await _limited([("PUT", f"{base}/api/pool/resources/{r.resource_id}", admin, r.doc())
                              for r in world.resources])
    failed = [(r.resource_id, s, b) for r, (s, b) in zip(world.resources, results, strict=True)
              if not 200 <= s < 300]
    if failed:
        print(f"warning: {len(failed)} pool resources not registered, e.g. {failed[0]}", file=sys.stderr)
    return len(world.resources) - len(failed)


async def issue_tokens(base: str, admin: str, secret: bytes | None, world: World,
                       ttl: float) -> dict[str, str]:
    """A token per person, scoped to their tour: minted here when we hold the secret, else by the server."""
    people = world.people()
    if secret:
        now = time.time()
        return {p.sub: tokens.issue(secret, role=p.role, sub=p.sub, tours=[p.tour_id], ttl=ttl, now=now)
                for p in people}
    calls = [("POST", f"{base}/api/tokens", admin,
              {"role": p.role, "sub": p.sub, "tours": [p.tour_id], "regions": [], "ttl": f"{int(ttl)}s"})
             for p in people]
    out = {}
    for person, (status, body) in zip(people, await _limited(calls, 16), strict=True):
        if not 200 <= status < 300 or not isinstance(body, dict) or "token" not in body:
            raise SetupError(f"POST /api/tokens for {person.sub}: HTTP {status} {body}")
        out[person.sub] = body["token"]
    return out


def ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


# --- the run ---------------------------------------------------------------------------------------------

class Driver:
    """Sends actions through one PhoneClient per person and keeps the tally."""

    def __init__(self, clients: dict[str, PhoneClient], run_id: str, rng: random.Random) -> None:
        self.clients = clients
        self.run_id = run_id
        self.rng = rng
        self.sent: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()  # acked, duplicate, unanswered, skipped, retried
        self.errors: Counter[str] = Counter()
        self.pushes: Counter[str] = Counter()
        self.dropped = 0
        self._incidents: dict[str, asyncio.Future[str | None]] = {}
        self._chains: dict[str, asyncio.Task[None]] = {}  # an incident's updates go out in order
        self._tasks: set[asyncio.Task[Any]] = set()
        self.accepting = True
        self.crashed = 0

    def spawn(self, coro: Any) -> None:
        self._track(asyncio.create_task(coro))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # a bug in the driver, not the server's doing: say so rather than let the task die quietly
            self.crashed += 1
            print(f"simulate: internal error: {task.exception()!r}", file=sys.stderr)

    def schedule(self, action: Action) -> None:
        msg_type = action.msg["type"]
        if msg_type == "incident":
            self._incidents[action.msg["id"]] = asyncio.get_running_loop().create_future()
        if action.after is None:
            self.spawn(self.perform(action))
            return
        previous = self._chains.get(action.after)
        task = asyncio.create_task(self.perform(action, previous))
        self._chains[action.after] = task
        self._track(task)

    async def perform(self, action: Action, previous: asyncio.Task[None] | None = None) -> None:
        msg = dict(action.msg)
        if action.after is not None:
            if previous is not None:
                await asyncio.wait([previous])
            incident = self._incidents.get(action.after)
            incident_id = await incident if incident is not None else None
            if incident_id is None:  # its incident was refused or never answered
                self.outcomes["skipped"] += 1
                return
            msg["incident_id"] = incident_id
        msg.setdefault("at", iso_utc(time.time()))  # stamped once: a re-send must be byte-for-byte the same
        incident_id = None
        try:
            answer = await self.send(self.clients[action.person.sub], msg)
            if answer is not None and answer.get("type") == "ack":
                incident_id = answer.get("incident_id")
        finally:
            # whatever happened, the updates waiting on this incident learn whether to go ahead
            waiting = self._incidents.get(msg["id"]) if msg["type"] == "incident" else None
            if waiting is not None and not waiting.done():
                waiting.set_result(incident_id)

    async def send(self, client: PhoneClient, msg: dict[str, Any]) -> dict[str, Any] | None:
        self.sent[msg["type"]] += 1
        for attempt in range(MAX_RETRIES + 1):
            try:
                answer = await client.send(msg)
            except ClientError:
                self.outcomes["unanswered"] += 1
                return None
            if answer.get("type") == "ack":
                self.outcomes["acked"] += 1
                if answer.get("duplicate"):
                    self.outcomes["duplicate"] += 1
                return answer
            code = str(answer.get("code"))
            self.errors[code] += 1
            if code not in RETRY_CODES or attempt == MAX_RETRIES:
                return answer
            self.outcomes["retried"] += 1
            await asyncio.sleep(0.5 * 2**attempt * (0.5 + self.rng.random()))
        return None

    async def read_pushes(self, person: Person, client: PhoneClient) -> None:
        reads = random.Random(person.sub).random() < NOTICE_READERS
        n = 0
        while True:
            push = await client.pushes.get()
            self.pushes[str(push.get("type"))] += 1
            notice_id = push.get("notice_id")
            if reads and self.accepting and push.get("type") == "notice" and isinstance(notice_id, str):
                n += 1
                self.spawn(self.send(client, {"type": "notice_read", "id": f"{self.run_id}-n{n}",
                                              "notice_id": notice_id, "at": iso_utc(time.time())}))

    async def drop_some(self, share: float, duration: float) -> None:
        subs = sorted(self.clients)
        victims = self.rng.sample(subs, round(len(subs) * max(0.0, min(1.0, share))))
        moments = sorted((self.rng.uniform(0.1, 0.9) * duration, sub) for sub in victims)
        start = time.monotonic()
        for at, sub in moments:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            if self.clients[sub].drop():
                self.dropped += 1

    async def finish(self, grace: float) -> None:
        """Wait up to ``grace`` for answers still due; anything left then counts as unanswered."""
        self.accepting = False
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    async def abandon(self) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def progress(self, elapsed: float) -> str:
        open_ = sum(c.connected for c in self.clients.values())
        errors = " ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (f"[{elapsed:5.0f}s] sent {sum(self.sent.values())} acked {self.outcomes['acked']} "
                f"dup {self.outcomes['duplicate']} errors {errors} "
                f"in-flight {sum(c.in_flight for c in self.clients.values())} "
                f"open {open_}/{len(self.clients)} pushes {sum(self.pushes.values())}")


async def _connect_all(people: list[Person], url: str, tokens_: dict[str, str], json_frames: bool,
                       seed: int) -> dict[str, PhoneClient]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    clients = {p.sub: PhoneClient(f"{url}/ws/{p.role}", tokens_[p.sub], json=json_frames,
                                  rng=random.Random(f"{seed}/{p.sub}")) for p in people}

    async def one(client: PhoneClient) -> None:
        async with gate:
            await client.connect()

    results = await asyncio.gather(*(one(c) for c in clients.values()), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await asyncio.gather(*(c.close() for c in clients.values()))
        hint = (" (is TOURPULSE_SECRET / TOURPULSE_DATA_DIR the server's?)"
                if isinstance(failures[0], HandshakeRefused) else "")
        raise SetupError(f"{len(failures)} of {len(clients)} phones could not connect: {failures[0]!r}{hint}")
    return clients


def summarize(args: argparse.Namespace, world: World, driver: Driver, elapsed: float) -> dict[str, Any]:
    latencies = [x for c in driver.clients.values() for x in c.latencies]
    stats = [c.stats for c in driver.clients.values()]
    sent = sum(driver.sent.values())
    answered = driver.outcomes["acked"] + sum(driver.errors.values()) - driver.outcomes["retried"]
    return {
        "url": args.url, "seed": args.seed, "tours": len(world.tours), "regions": len(world.regions),
        "phones": len(driver.clients), "rate": args.rate, "duration_s": args.duration,
        "elapsed_s": round(elapsed, 3), "encoding": "json" if args.json else "msgpack",
        "sent": sent, "sent_by_type": dict(driver.sent),
        "achieved_rate": round(sent / elapsed, 1) if elapsed else 0.0,
        "acked": driver.outcomes["acked"], "duplicates": driver.outcomes["duplicate"],
        "errors": dict(driver.errors), "retried": driver.outcomes["retried"],
        "unanswered": sent - answered, "skipped_updates": driver.outcomes["skipped"],
        "ack_ms": {q: round(percentile(latencies, v) * 1000, 2)
                   for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "dropped_on_purpose": driver.dropped, "reconnects": sum(s.connects for s in stats) - len(stats),
        "resent": sum(s.resent for s in stats), "late_answers": sum(s.late_answers for s in stats),
        "pushes": dict(driver.pushes), "internal_errors": driver.crashed,
    }


def write_summary(summary: dict[str, Any], path: str | None) -> None:
    ms = summary["ack_ms"]
    errors = ", ".join(f"{k}={v}" for k, v in sorted(summary["errors"].items())) or "none"
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(summary["sent_by_type"].items()))
    print(f"sent {summary['sent']} in {summary['elapsed_s']:.1f} s ({summary['achieved_rate']}/s): {by_type}")
    print(f"acked {summary['acked']} (duplicates {summary['duplicates']}), errors: {errors}; "
          f"retried {summary['retried']}, unanswered {summary['unanswered']}, "
          f"updates skipped {summary['skipped_updates']}")
    print(f"ack latency ms: p50 {ms['p50']} p90 {ms['p90']} p99 {ms['p99']} max {ms['max']}")
    print(f"phones {summary['phones']}: dropped {summary['dropped_on_purpose']}, reconnects "
          f"{summary['reconnects']}, re-sent {summary['resent']}; pushes {sum(summary['pushes'].values())}")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, ensure_ascii=False, indent=2)


async def run(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    secret: bytes | None = None
    if args.admin_token:
        admin = args.admin_token
    else:
        secret = load_settings().secret
        admin = tokens.issue(secret, role="admin", sub="simulate", regions=["*"], ttl=3600, now=time.time())
    run_id = args.run_id or f"s{int(time.time()):x}"
    world = build_world(args.seed, args.tours, args.travellers, args.regions, now=time.time())
    resources = await register(base, admin, world, args.pool)
    people = world.people()
    tokens_ = await issue_tokens(base, admin, secret, world, ttl=args.duration + args.grace + 3600)
    clients = await _connect_all(people, ws_base(base), tokens_, args.json, args.seed)
    driver = Driver(clients, run_id, random.Random(f"{args.seed}/driver"))
    print(f"simulate: {len(world.tours)} tours in {len(world.regions)} regions, {len(people)} phones, "
          f"{resources} pool resources; {args.rate:g} msg/s for {args.duration:g} s (run {run_id})",
          file=sys.stderr)
    readers = [asyncio.create_task(driver.read_pushes(p, clients[p.sub])) for p in people]
    start = time.monotonic()
    helpers = [asyncio.create_task(driver.drop_some(args.reconnect_share, args.duration))]
    if not args.quiet:
        helpers.append(asyncio.create_task(_progress(driver, start)))
    try:
        for action in actions(world, rate=args.rate, duration=args.duration, run_id=run_id):
            delay = start + action.at - time.monotonic()
            if delay > 0.001:
                await asyncio.sleep(delay)
            driver.schedule(action)
        await driver.finish(args.grace)
        elapsed = time.monotonic() - start
    finally:
        for task in (*helpers, *readers):
            task.cancel()
        await asyncio.gather(*helpers, *readers, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in clients.values()))
        await driver.abandon()
    summary = summarize(args, world, driver, elapsed)
    write_summary(summary, args.summary_json)
    return 0 if summary["unanswered"] == 0 and not driver.crashed else 1


async def _progress(driver: Driver, start: float) -> None:
    while True:
        await asyncio.sleep(1.0)
        print(driver.progress(time.monotonic() - start), file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.tours < 1 or args.travellers < 1 or args.regions < 1 or args.rate <= 0 or args.duration <= 0:
        print("tourpulse simulate: tours, travellers, regions, rate and duration must be positive",
              file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args))
    except (SetupError, ConfigError) as exc:
        print(f"tourpulse simulate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

