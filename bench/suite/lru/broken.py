"""An LRU cache that looks right but evicts in insertion order: a get
does not make its key the most recently used (a FIFO cache)."""

from collections import OrderedDict


class LRUCache:
    def __init__(self, capacity):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"the capacity must be an int of at least 1, not {capacity!r}")
        self._capacity = capacity
        self._data = OrderedDict()

    @property
    def capacity(self):
        return self._capacity

    def get(self, key):
        return self._data.get(key, -1)

    def put(self, key, value):
        if key in self._data:
            self._data[key] = value
            self._data.move_to_end(key)
            return
        if len(self._data) == self._capacity:
            self._data.popitem(last=False)
        self._data[key] = value

    def __len__(self):
        return len(self._data)

    def __contains__(self, key):
        return key in self._data

    def keys(self):
        return list(self._data)
