package refresher_test

import (
	"context"
	"iter"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/store"
)

// processCPU is the CPU time the process has used (user and system, GC
// included): on a shared machine it tells a refresh's cost better than the
// wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRefresh10k is one whole refresh of 10,000 endpoints over two
// regions: the real aws-sdk-go-v2 client reading ec2sim over loopback
// (1,000 a page), the diff against the current snapshot, and the publish to
// a memory store. Ten endpoints change before each refresh, so every
// refresh publishes. cpu-ns/op counts the sim's CPU too.
func BenchmarkRefresh10k(b *testing.B) {
	f := newFixture(b, fixtureOptions{count: 10_000, regions: []string{"eu-west-1", "us-east-1"}, accounts: 1})
	f.refresh(b)
	cpu := processCPU(b)
	for b.Loop() {
		f.sim.Mutate(10)
		f.refresh(b)
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// memorySource is a Source holding its endpoints in memory, so that a
// benchmark measures what the refresher does with a read, not the read.
type memorySource struct {
	byRegion map[string][]*clientvpnv1.ClientVpnEndpoint
}

func (s *memorySource) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for region := range s.byRegion {
			if !yield(ec2sim.DefaultAccount, region) {
				return
			}
		}
	}
}

// Read returns the messages it holds, not copies, so that the benchmark
// counts the refresher's work alone: the refresher and the memory store
// only read them.
func (s *memorySource) Read(_ context.Context, _, region string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	return s.byRegion[region], nil
}

// BenchmarkRefreshPublish10k is the refresher's own part of a refresh of
// 10,000 endpoints, the upstream read left out (the source hands over messages
// already in memory): diff against the current snapshot, encode,
// index, publish to a memory store. One endpoint changes before each
// refresh, so every refresh publishes.
func BenchmarkRefreshPublish10k(b *testing.B) {
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 10_000, Seed: 99, Regions: []string{"eu-west-1", "us-east-1"}})
	if err != nil {
		b.Fatal(err)
	}
	src := &memorySource{byRegion: map[string][]*clientvpnv1.ClientVpnEndpoint{}}
	for _, e := range eps {
		src.byRegion[e.GetRegion()] = append(src.byRegion[e.GetRegion()], e)
	}
	st := store.NewMemory()
	r, err := refresher.New(src, st, refresher.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.RefreshNow(b.Context()); err != nil {
		b.Fatal(err)
	}
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		eps[i%len(eps)].Description = proto.String("changed " + time.Now().String())
		i++
		if err := r.RefreshNow(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
	if v, err := st.Current(b.Context()); err != nil || v.Len() != len(eps) {
		b.Fatalf("current snapshot: %v, %v", v.Snapshot, err)
	}
}
