"""A bounded hand-over between two pipeline threads.

The sender never blocks: when the receiver has fallen `limit` items behind (an overloaded
node), new media is dropped and counted, rather than the network thread waiting or the
pod's memory filling up. Events (joins, leaves, the end) always get through.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox(Generic[T]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._items: deque[T] = deque()
        self._lock = threading.Lock()  # held only to append or swap, never while working

    def put(self, item: T, *, droppable: bool = True) -> None:
        with self._lock:
            if droppable and len(self._items) >= self.limit:
                self.dropped += 1
                return
            self._items.append(item)

    def take(self) -> list[T]:
        """Everything sent so far, in order."""
        with self._lock:
            items, self._items = self._items, deque()
        return list(items)
