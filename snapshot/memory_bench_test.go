package snapshot_test

import (
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

const memoryBenchN = 100_000

// storedChunks returns n rich endpoints encoded as a store keeps them.
func storedChunks(b *testing.B, n int) [][]byte {
	b.Helper()
	s := endpointtest.Snapshot(b, 1, endpointtest.Rich(n, 3, "m"))
	var chunks [][]byte
	for from := 0; from < s.Len(); {
		var c []byte
		c, from = s.AppendWire(nil, from, 256<<10)
		chunks = append(chunks, c)
	}
	return chunks
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFromWire100k is a warm start's work after Redis answered: build
// the snapshot of 100,000 endpoints from their stored encodings, and all its
// indexes (which a warm start builds after serving). It reports the heap the
// snapshot holds per endpoint, indexes included.
func BenchmarkFromWire100k(b *testing.B) {
	chunks := storedChunks(b, memoryBenchN)
	var held uint64
	for b.Loop() {
		b.StopTimer()
		copied := make([][]byte, len(chunks))
		for i, c := range chunks {
			copied[i] = append([]byte(nil), c...)
		}
		before := heapInUse()
		b.StartTimer()
		s, err := snapshot.FromWire(1, time.Now(), nil, copied)
		if err != nil || s.Len() != memoryBenchN {
			b.Fatalf("FromWire: %v", err)
		}
		s.BuildIndexes()
		b.StopTimer()
		held = heapInUse() - before
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(float64(held)/memoryBenchN, "heapB/endpoint")
}

// BenchmarkDecodeAll100k is what a warm start cost before snapshots kept
// encodings: decode every stored endpoint into a message. Same data as
// BenchmarkFromWire100k, for a same-run comparison.
func BenchmarkDecodeAll100k(b *testing.B) {
	chunks := storedChunks(b, memoryBenchN)
	var held uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		out := make([]*clientvpnv1.ClientVpnEndpoint, 0, memoryBenchN)
		for _, c := range chunks {
			for len(c) > 0 {
				v, n := protowire.ConsumeBytes(c)
				m := &clientvpnv1.ClientVpnEndpoint{}
				if err := proto.Unmarshal(v, m); err != nil {
					b.Fatal(err)
				}
				out = append(out, m)
				c = c[n:]
			}
		}
		b.StopTimer()
		held = heapInUse() - before
		runtime.KeepAlive(out)
		b.StartTimer()
	}
	b.ReportMetric(float64(held)/memoryBenchN, "heapB/endpoint")
}
