"""The hotconf agent: one small daemon per machine.

It notices a change to the configuration directory (inotify, or mtime polling where
inotify is unavailable, plus a slow periodic rescan and the Redis fast path), waits
for the writes to settle, validates the new files with ``hotconf`` and, when they are
good, runs the reload hooks and reports the result. The files on disk are the truth;
everything else only says "look now".
"""

from __future__ import annotations
