package server

import (
	"bytes"
	"compress/gzip"
	"hash/maphash"
	"io"
	"sync"
)

// The gzip cache's bounds: payloads of gzipCacheMinBytes or more are
// looked up; it holds at most gzipCacheEntries of them and
// gzipCacheBytes of inputs and outputs together.
const (
	gzipCacheMinBytes = 4 << 10
	gzipCacheEntries  = 32
	gzipCacheBytes    = 16 << 20
)

// gzipCache remembers the gzip output of the last large payloads. A change
// that a thousand watchers receive reaches the compressor a thousand times
// with the same bytes; gzip's output for equal input is equal, so the
// first compression serves the rest. Entries are compared in full, never
// by hash alone, and evicted oldest first.
type gzipCache struct {
	seed       maphash.Seed
	maxEntries int
	maxBytes   int

	mu      sync.Mutex
	entries map[uint64]*gzipEntry
	order   []uint64 // hashes, oldest first
	bytes   int
}

type gzipEntry struct {
	input, output []byte
}

func newGzipCache(maxEntries, maxBytes int) *gzipCache {
	return &gzipCache{seed: maphash.MakeSeed(), maxEntries: maxEntries, maxBytes: maxBytes, entries: map[uint64]*gzipEntry{}}
}

// hash is the key of input.
func (c *gzipCache) hash(input []byte) uint64 { return maphash.Bytes(c.seed, input) }

// get returns the compressed form of input, if cached.
func (c *gzipCache) get(h uint64, input []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok || !bytes.Equal(e.input, input) {
		return nil, false
	}
	return e.output, true
}

// put caches output as the compressed form of input (both are kept, not
// copied: the caller gives them up).
func (c *gzipCache) put(h uint64, input, output []byte) {
	size := len(input) + len(output)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[h]; ok {
		c.bytes -= len(old.input) + len(old.output)
	} else {
		c.order = append(c.order, h)
	}
	c.entries[h] = &gzipEntry{input: input, output: output}
	c.bytes += size
	for len(c.order) > 0 && (len(c.entries) > c.maxEntries || c.bytes > c.maxBytes) {
		oldest := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.entries[oldest]; ok {
			c.bytes -= len(e.input) + len(e.output)
			delete(c.entries, oldest)
		}
	}
}

// cachingGzip is a connect.Compressor: gzip at its fastest level, through
// the cache for large payloads. connect-go writes a whole message to it,
// then closes it.
type cachingGzip struct {
	cache *gzipCache
	gz    *gzip.Writer
	dst   io.Writer
	input []byte
}

// Reset implements connect.Compressor.
func (c *cachingGzip) Reset(dst io.Writer) {
	c.dst = dst
	c.input = c.input[:0]
}

// Write implements connect.Compressor; the payload is compressed on Close.
func (c *cachingGzip) Write(p []byte) (int, error) {
	c.input = append(c.input, p...)
	return len(p), nil
}

// Close implements connect.Compressor: it writes the compressed payload.
func (c *cachingGzip) Close() error {
	large := len(c.input) >= gzipCacheMinBytes
	var h uint64
	if large {
		h = c.cache.hash(c.input)
		if out, ok := c.cache.get(h, c.input); ok {
			_, err := c.dst.Write(out)
			return err
		}
	}
	var out bytes.Buffer
	if c.gz == nil {
		c.gz, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed) // the level is valid: no error
	} else {
		c.gz.Reset(&out)
	}
	if _, err := c.gz.Write(c.input); err != nil {
		return err
	}
	if err := c.gz.Close(); err != nil {
		return err
	}
	if large {
		c.cache.put(h, bytes.Clone(c.input), out.Bytes())
	}
	_, err := c.dst.Write(out.Bytes())
	if cap(c.input) > 1<<20 {
		c.input = nil // do not keep a large buffer in the pool
	}
	return err
}
