package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// compress runs c as connect-go does: Reset, one Write, Close.
func compress(t *testing.T, c *cachingGzip, payload []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	c.Reset(&out)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCachingGzip compresses payloads through two compressors sharing a
// cache: every output decompresses to its input, a large payload seen
// before comes from the cache, and the cache keeps to its bounds.
func TestCachingGzip(t *testing.T) {
	cache := newGzipCache(3, 1<<20)
	a, b := &cachingGzip{cache: cache}, &cachingGzip{cache: cache}
	payload := func(i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("endpoint %d;", i)), gzipCacheMinBytes/8)
	}
	first := compress(t, a, payload(1))
	if !bytes.Equal(gunzip(t, first), payload(1)) {
		t.Fatal("the first compression does not decompress to its input")
	}
	if _, ok := cache.get(cache.hash(payload(1)), payload(1)); !ok {
		t.Fatal("a large payload was not cached")
	}
	again := compress(t, b, payload(1))
	if !bytes.Equal(again, first) {
		t.Fatal("the same payload through the other compressor gave other bytes")
	}
	other := compress(t, b, payload(2))
	if !bytes.Equal(gunzip(t, other), payload(2)) {
		t.Fatal("another payload does not decompress to its input")
	}
	small := []byte("small payload, compressed but not cached")
	if got := gunzip(t, compress(t, a, small)); !bytes.Equal(got, small) {
		t.Fatal("a small payload does not decompress to its input")
	}
	if _, ok := cache.get(cache.hash(small), small); ok {
		t.Fatal("a small payload was cached")
	}
	for i := 3; i < 10; i++ {
		compress(t, a, payload(i))
	}
	if len(cache.entries) != 3 || len(cache.order) != 3 {
		t.Fatalf("the cache holds %d entries (%d in order), want its bound of 3", len(cache.entries), len(cache.order))
	}
	if _, ok := cache.get(cache.hash(payload(1)), payload(1)); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	// A payload whose hash is cached for other bytes is compressed anew.
	cache.entries[cache.hash(payload(11))] = &gzipEntry{input: payload(12), output: []byte("not gzip")}
	if got := gunzip(t, compress(t, a, payload(11))); !bytes.Equal(got, payload(11)) {
		t.Fatal("an entry for other bytes under the same hash was served")
	}
}

// TestGzipCacheBytesBound: however many distinct large payloads callers
// send through it (a client varying its filters), the cache holds at most
// its bound of input and output bytes, counted exactly, and a payload
// larger than the bound is compressed but never kept.
func TestGzipCacheBytesBound(t *testing.T) {
	const bound = 64 << 10
	cache := newGzipCache(1000, bound)
	c := &cachingGzip{cache: cache}
	for i := range 200 {
		payload := bytes.Repeat([]byte(fmt.Sprintf("probe %d;", i)), gzipCacheMinBytes/4)
		if got := gunzip(t, compress(t, c, payload)); !bytes.Equal(got, payload) {
			t.Fatalf("payload %d does not decompress to its input", i)
		}
		sum := 0
		for _, e := range cache.entries {
			sum += len(e.input) + len(e.output)
		}
		if sum != cache.bytes || cache.bytes > bound {
			t.Fatalf("after %d payloads the cache counts %d bytes and holds %d; want them equal and at most %d", i+1, cache.bytes, sum, bound)
		}
	}
	huge := bytes.Repeat([]byte("x"), bound+1)
	compress(t, c, huge)
	if _, ok := cache.get(cache.hash(huge), huge); ok {
		t.Fatal("a payload larger than the bound was kept")
	}
}
