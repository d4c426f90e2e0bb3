"""A watcher in its own process, for the crash tests: ``python tests/watcher_proc.py SETTINGS_JSON [kill-before-ack]``.

With ``kill-before-ack`` the process SIGKILLs itself the first time it is about to save states and XACK (one
step, ``flush.lua``): it has read a batch and applied its effects, and saved and acked nothing. Nothing here changes
the watcher; only that step is intercepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alerts import consumer  # noqa: E402
from alerts.watcher import Watcher  # noqa: E402
from tests.conftest import make_settings  # noqa: E402


def die_at_first_ack() -> None:
    async def commit(self, tours, ids):  # noqa: ANN001, ANN202
        print("KILLED", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    consumer.ShardConsumer._commit = commit


async def main() -> None:
    spec = json.loads(sys.argv[1])
    settings = make_settings(spec["redis_url"], spec["doc"])  # the prompt to rate as quiet as in the test's own
    if "kill-before-ack" in sys.argv[2:]:
        die_at_first_ack()
    watcher = Watcher(settings, watcher_id=spec.get("id"))
    await watcher.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await watcher.stop()


if __name__ == "__main__":
    asyncio.run(main())
