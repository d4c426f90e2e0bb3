"""Paging people (contract §12): a job queue in Redis and the sender that works it.

Stages, each its own module: :mod:`.pager` turns alert changes into jobs (what to send is decided by the pure
:mod:`alerts.rules.rota`), :mod:`.queue` keeps the jobs (Lua, in the ``{alerts}`` slot, so that a delivered job is
marked done in the same step that writes the alert's audit), :mod:`.formats` says a page in each channel's shape
(pure) and :mod:`.sender` delivers it by e-mail or webhook, with retries. :mod:`.runner` runs pager and sender on
an event loop of their own, in a thread of the watcher process.
"""
