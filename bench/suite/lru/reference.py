"""An LRU cache with O(1) get and put: a dict from key to node, and a
doubly linked list of the nodes from least to most recently used."""


class _Node:
    __slots__ = ("key", "value", "prev", "next")

    def __init__(self, key=None, value=None):
        self.key = key
        self.value = value
        self.prev = None
        self.next = None


class LRUCache:
    def __init__(self, capacity):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"the capacity must be an int of at least 1, not {capacity!r}")
        self._capacity = capacity
        self._nodes = {}
        # a sentinel: head.next is the least recently used, head.prev the most
        self._head = _Node()
        self._head.prev = self._head
        self._head.next = self._head

    @property
    def capacity(self):
        return self._capacity

    def _unlink(self, node):
        node.prev.next = node.next
        node.next.prev = node.prev

    def _append(self, node):
        last = self._head.prev
        last.next = node
        node.prev = last
        node.next = self._head
        self._head.prev = node

    def get(self, key):
        node = self._nodes.get(key)
        if node is None:
            return -1
        self._unlink(node)
        self._append(node)
        return node.value

    def put(self, key, value):
        node = self._nodes.get(key)
        if node is not None:
            node.value = value
            self._unlink(node)
            self._append(node)
            return
        if len(self._nodes) == self._capacity:
            oldest = self._head.next
            self._unlink(oldest)
            del self._nodes[oldest.key]
        node = _Node(key, value)
        self._nodes[key] = node
        self._append(node)

    def __len__(self):
        return len(self._nodes)

    def __contains__(self, key):
        return key in self._nodes

    def keys(self):
        out = []
        node = self._head.next
        while node is not self._head:
            out.append(node.key)
            node = node.next
        return out
