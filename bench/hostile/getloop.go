package main

import (
	"context"
	"slices"
	"sync"
	"time"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// getLoop is the victim: Gets at a fixed rate, each timed from its
// scheduled start (so a stalled server shows in the figures rather than
// slowing the loop down).
type getLoop struct {
	client  clientvpnv1connect.ClientVpnServiceClient
	ids     []string
	workers int
	every   time.Duration // per worker
}

// latencies of one run, and the calls that failed.
type latencies struct {
	took   []time.Duration
	failed int
}

func (l latencies) quantile(q float64) time.Duration {
	if len(l.took) == 0 {
		return 0
	}
	s := slices.Clone(l.took)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// run sends Gets until ctx is done.
func (g *getLoop) run(ctx context.Context) latencies {
	var mu sync.Mutex
	var out latencies
	var wg sync.WaitGroup
	for w := range g.workers {
		wg.Go(func() {
			next := time.Now().Add(time.Duration(w) * g.every / time.Duration(g.workers))
			for i := w; ; i += g.workers {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				if ctx.Err() != nil {
					return
				}
				start := next
				callCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := g.client.GetClientVpnEndpoint(callCtx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: g.ids[i%len(g.ids)]})
				cancel()
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					out.failed++
				} else {
					out.took = append(out.took, took)
				}
				mu.Unlock()
				next = next.Add(g.every)
				if behind := time.Since(next); behind > time.Second {
					next = time.Now() // do not pile up calls after a long stall
				}
			}
		})
	}
	wg.Wait()
	return out
}
