package server

import (
	"compress/gzip"

	"connectrpc.com/connect"
)

// compressMinBytes is the smallest response worth compressing: a single
// endpoint (about 0.7 KB) costs more CPU to gzip than it saves on a local
// network.
const compressMinBytes = 1024

// CompressionOptions are the handler's response compression policy: gzip at
// its fastest level, and only for responses of compressMinBytes or more.
// Profiles under load showed default-level gzip taking 39% of a Get and 59%
// of a 100-endpoint List; BestSpeed keeps most of the size saving for a
// fraction of the CPU.
//
// Large payloads are compressed once: identical ones (a change sent to a
// thousand watchers, the same page asked for by many clients) share one
// compression through a small cache (see gzipCache).
func CompressionOptions() []connect.HandlerOption {
	cache := newGzipCache(gzipCacheEntries, gzipCacheBytes)
	return []connect.HandlerOption{
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &gzip.Reader{} },
			func() connect.Compressor { return &cachingGzip{cache: cache} },
		),
		connect.WithCompressMinBytes(compressMinBytes),
	}
}
