"""A first-in, first-out queue over collections.deque, optionally bounded."""

from collections import deque


class Queue:
    def __init__(self, capacity=None):
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"the capacity is None or an int of at least 1, not {capacity!r}")
        self._capacity = capacity
        self._items = deque()

    def enqueue(self, item):
        if self.is_full():
            raise OverflowError(f"the queue is full ({self._capacity} items)")
        self._items.append(item)

    def dequeue(self):
        if not self._items:
            raise IndexError("dequeue from an empty queue")
        return self._items.popleft()

    def front(self):
        if not self._items:
            raise IndexError("front of an empty queue")
        return self._items[0]

    def is_empty(self):
        return not self._items

    def is_full(self):
        return self._capacity is not None and len(self._items) >= self._capacity

    def size(self):
        return len(self._items)

    def __len__(self):
        return len(self._items)

    def to_list(self):
        return list(self._items)
