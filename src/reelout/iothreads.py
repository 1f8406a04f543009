"""A small, dedicated pool for bulk file I/O (writing and hashing upload bytes).

Upload bodies are written and hashed off the event loop. Doing that on the general thread pool
lets dozens of threads contend for the GIL at once, and the event loop (HEAD requests, auth)
then waits in that convoy. Two threads are enough to keep the page cache and SHA-256 busy,
and they leave the loop responsive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reelout-io")


async def run_io(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking bulk-I/O call on the dedicated pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn, *args)
