package idem

import (
	"bytes"
	"sync"
	"time"
)

// Cache is an in-process LRU of COMPLETED records, bounded both in entries
// and in bytes of stored responses. It never holds IN_PROGRESS records, and
// stops serving a record ClockSkew before the record expires, so it never
// replays a record the table would let a new attempt replace. It keeps its
// own copy of each response and hands out copies, so neither fn reusing the
// slice it returned nor a caller changing a Result alters a later replay. It
// is safe for concurrent use and may be shared by several guards on the same
// table.
type Cache struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int64
	bytes      int64
	// The records in order of use, a list threaded through the nodes:
	// newest the most recently used, oldest the next to be evicted.
	newest, oldest *cacheNode
	byID           map[string]*cacheNode
}

// cacheNode is a record held, linked to its neighbours in the order of use.
type cacheNode struct {
	cacheEntry
	newer, older *cacheNode // nil at the ends of the list
}

type cacheEntry struct {
	id          string
	fingerprint string
	response    []byte
	expiresAt   time.Time
}

func (e *cacheEntry) size() int64 {
	return int64(len(e.id) + len(e.fingerprint) + len(e.response) + 64)
}

// NewCache returns a cache of at most maxEntries records and maxBytes bytes
// (responses plus a small per-entry overhead). A record larger than maxBytes
// is not cached. It panics when a bound is not positive.
func NewCache(maxEntries int, maxBytes int64) *Cache {
	if maxEntries <= 0 || maxBytes <= 0 {
		panic("idem: NewCache bounds must be positive")
	}
	return &Cache{maxEntries: maxEntries, maxBytes: maxBytes, byID: make(map[string]*cacheNode)}
}

// Len returns the number of records held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// Bytes returns the bytes accounted to the records held.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// get returns the record of id, its response a copy the caller may keep
// and change, if it is still live at horizon (now plus ClockSkew); an
// expired record is dropped.
func (c *Cache) get(id string, horizon time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	n, ok := c.byID[id]
	if !ok {
		c.mu.Unlock()
		return cacheEntry{}, false
	}
	if !horizon.Before(n.expiresAt) {
		c.remove(n)
		c.mu.Unlock()
		return cacheEntry{}, false
	}
	c.unlink(n)
	c.pushNewest(n)
	got := n.cacheEntry
	c.mu.Unlock()
	got.response = bytes.Clone(got.response) // outside the lock: a stored response is never changed
	return got, true
}

// put remembers a COMPLETED record with a copy of response, evicting the
// least recently used ones to stay within bounds.
func (c *Cache) put(id, fingerprint string, response []byte, expiresAt time.Time) {
	n := &cacheNode{cacheEntry: cacheEntry{id: id, fingerprint: fingerprint, response: response, expiresAt: expiresAt}}
	if n.size() > c.maxBytes {
		return
	}
	n.response = bytes.Clone(response) // outside the lock
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok {
		c.remove(old)
	}
	c.byID[id] = n
	c.pushNewest(n)
	c.bytes += n.size()
	for len(c.byID) > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.oldest)
	}
}

// remove drops n, which the cache holds.
func (c *Cache) remove(n *cacheNode) {
	c.unlink(n)
	delete(c.byID, n.id)
	c.bytes -= n.size()
}

// unlink takes n, which is in the list, out of it.
func (c *Cache) unlink(n *cacheNode) {
	if n.newer != nil {
		n.newer.older = n.older
	} else {
		c.newest = n.older
	}
	if n.older != nil {
		n.older.newer = n.newer
	} else {
		c.oldest = n.newer
	}
	n.newer, n.older = nil, nil
}

// pushNewest puts n, which is in no list, at the newest end.
func (c *Cache) pushNewest(n *cacheNode) {
	n.older = c.newest
	if c.newest != nil {
		c.newest.newer = n
	} else {
		c.oldest = n
	}
	c.newest = n
}
