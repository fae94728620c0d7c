"""A queue of two lists (items arrive in `_inbox`, leave from `_outbox`,
reversed when it runs dry) that looks right, but its size counts only the
inbox: after a dequeue has moved items over, the size is wrong."""


class Queue:
    def __init__(self, capacity=None):
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"the capacity is None or an int of at least 1, not {capacity!r}")
        self._capacity = capacity
        self._inbox = []
        self._outbox = []

    def _refill(self):
        if not self._outbox:
            while self._inbox:
                self._outbox.append(self._inbox.pop())

    def enqueue(self, item):
        if self.is_full():
            raise OverflowError(f"the queue is full ({self._capacity} items)")
        self._inbox.append(item)

    def dequeue(self):
        self._refill()
        if not self._outbox:
            raise IndexError("dequeue from an empty queue")
        return self._outbox.pop()

    def front(self):
        self._refill()
        if not self._outbox:
            raise IndexError("front of an empty queue")
        return self._outbox[-1]

    def is_empty(self):
        return not self._inbox and not self._outbox

    def is_full(self):
        return self._capacity is not None and self.size() >= self._capacity

    def size(self):
        return len(self._inbox)

    def __len__(self):
        return self.size()

    def to_list(self):
        return self._outbox[::-1] + self._inbox
