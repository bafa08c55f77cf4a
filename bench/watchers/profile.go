package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// startProfiles starts CPU profiles of both replicas (through their
// --pprof-listen) and of this process, and an execution trace of replica 1
// (the follower), for the rounds with watchers. The replicas' profiles last
// a fixed time, long enough for the rounds at the configured refresh
// interval; the returned function stops this process's profile and waits
// for the replicas'. Failures are printed: profiles are an aid, not a
// figure.
func (b *bench) startProfiles() (stop func()) {
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		fmt.Printf("profile: %v\n", err)
		return func() {}
	}
	// A round takes up to a refresh interval plus the deliveries, or with
	// RefreshNow a refresh and the deliveries.
	round := b.o.refreshInterval + 500*time.Millisecond
	if b.o.refreshNow {
		round = 1500 * time.Millisecond
	}
	window := time.Duration(b.o.rounds)*round + 2*time.Second
	var wg sync.WaitGroup
	fetch := func(url, file string) {
		wg.Go(func() {
			res, err := http.Get(url)
			if err != nil {
				fmt.Printf("profile %s: %v\n", file, err)
				return
			}
			defer res.Body.Close()
			f, err := os.Create(filepath.Join(b.o.profile, file))
			if err != nil {
				fmt.Printf("profile %s: %v\n", file, err)
				return
			}
			defer f.Close()
			if _, err := io.Copy(f, res.Body); err != nil {
				fmt.Printf("profile %s: %v\n", file, err)
			}
		})
	}
	for i, r := range b.replicas {
		fetch(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", r.pprof, int(window.Seconds())), fmt.Sprintf("replica%d.pprof", i))
	}
	// Go allows one trace at a time per process: the follower's, over about
	// two rounds.
	fetch(fmt.Sprintf("%s/debug/pprof/trace?seconds=%d", b.replicas[len(b.replicas)-1].pprof, max(1, int(2*round.Seconds()+1))), fmt.Sprintf("replica%d.trace", len(b.replicas)-1))
	f, err := os.Create(filepath.Join(b.o.profile, "bench.pprof"))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Printf("profile bench.pprof: %v\n", err)
	}
	start := time.Now()
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		if took := time.Since(start); took > window {
			fmt.Printf("profile: the rounds took %v, the replicas' profiles cover the first %v\n", took.Round(time.Second), window)
		}
		wg.Wait()
		fmt.Printf("profiles written to %s (the replicas' over %v from the first round)\n", b.o.profile, window)
	}
}
