package idem

import (
	"bytes"
	"container/list"
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
	ll         *list.List // front: most recently used
	byID       map[string]*list.Element
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
	return &Cache{maxEntries: maxEntries, maxBytes: maxBytes, ll: list.New(), byID: make(map[string]*list.Element)}
}

// Len returns the number of records held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
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
	el, ok := c.byID[id]
	if !ok {
		c.mu.Unlock()
		return cacheEntry{}, false
	}
	e := el.Value.(*cacheEntry)
	if !horizon.Before(e.expiresAt) {
		c.remove(el)
		c.mu.Unlock()
		return cacheEntry{}, false
	}
	c.ll.MoveToFront(el)
	got := *e
	c.mu.Unlock()
	got.response = bytes.Clone(got.response) // outside the lock: a stored response is never changed
	return got, true
}

// put remembers a COMPLETED record with a copy of response, evicting the
// least recently used ones to stay within bounds.
func (c *Cache) put(id, fingerprint string, response []byte, expiresAt time.Time) {
	e := &cacheEntry{id: id, fingerprint: fingerprint, response: response, expiresAt: expiresAt}
	if e.size() > c.maxBytes {
		return
	}
	e.response = bytes.Clone(response) // outside the lock
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		c.remove(el)
	}
	c.byID[id] = c.ll.PushFront(e)
	c.bytes += e.size()
	for c.ll.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.ll.Back())
	}
}

func (c *Cache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.byID, e.id)
	c.bytes -= e.size()
}
