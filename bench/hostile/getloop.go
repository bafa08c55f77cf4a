package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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

// victimProcess runs the Get loop in a process of its own, as another
// client of the server would be: the probes' goroutines and garbage in
// this process then do not delay its calls, only the machine and the
// server do.
type victimProcess struct {
	url   string
	ids   []string
	rate  int
	phase time.Duration
}

// run runs the Get loop once, for the phase, and returns its latencies.
func (v *victimProcess) run() (latencies, error) {
	self, err := os.Executable()
	if err != nil {
		return latencies{}, err
	}
	cmd := exec.Command(self, "--victim", v.url, "--rate", strconv.Itoa(v.rate), "--phase", v.phase.String())
	cmd.Stdin = strings.NewReader(strings.Join(v.ids, "\n"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return latencies{}, fmt.Errorf("the Get loop process: %w", err)
	}
	var l latencies
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "fail" {
			l.failed++
			continue
		}
		ns, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return latencies{}, fmt.Errorf("the Get loop process wrote %q", line)
		}
		l.took = append(l.took, time.Duration(ns))
	}
	return l, nil
}

// runVictim is the Get loop process: ids on stdin, one line per Get on
// stdout (its latency in nanoseconds, or "fail").
func runVictim(url string, rate int, phase time.Duration) error {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	ids := strings.Fields(string(in))
	if len(ids) == 0 {
		return errors.New("no ids on stdin")
	}
	// The victim is another client than the attackers: it connects from
	// 127.0.0.2 (Linux routes all of 127/8 to loopback), the probes from
	// 127.0.0.1, so that the server's per-address limits can tell them
	// apart as they would two hosts.
	hc := h2cClient()
	hc.Transport.(*http.Transport).DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext
	client := clientvpnv1connect.NewClientVpnServiceClient(hc, url)
	// The connection is set up before the clock starts.
	if _, err := client.GetClientVpnEndpoint(context.Background(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: ids[0]}); err != nil {
		return fmt.Errorf("first Get: %w", err)
	}
	const workers = 8
	loop := &getLoop{client: client, ids: ids, workers: workers, every: time.Second * workers / time.Duration(rate)}
	ctx, cancel := context.WithTimeout(context.Background(), phase)
	defer cancel()
	l := loop.run(ctx)
	w := bufio.NewWriter(os.Stdout)
	for _, d := range l.took {
		fmt.Fprintln(w, int64(d))
	}
	for range l.failed {
		fmt.Fprintln(w, "fail")
	}
	return w.Flush()
}
