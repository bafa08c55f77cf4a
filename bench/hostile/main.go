// Command hostile probes a vpnfacade binary as an attacker would (issue
// 19), on loopback, and reports what each probe costs the server and what
// the probes do to other clients' Gets.
//
// It starts the binary in --demo mode with --count endpoints, then:
//
//  1. measures the server's idle CPU, and a Get loop alone (p50, p99);
//  2. sends each probe alone (ten times, for resolution) and reports the
//     server CPU one cost (from /proc/PID/stat before and after, less idle
//     CPU), and what came back;
//  3. runs the Get loop again while every request probe is sent over and
//     over by three clients that give up after two seconds, 1,000 clients
//     ask for big pages and never read them, and 50 connections trickle
//     their bodies, and reports the Get loop's p50 and p99 against step 1,
//     and the server's CPU (user and system) in both.
//
// The Get loop runs in a process of its own (this program, run with
// --victim) connecting from 127.0.0.2, the probes from 127.0.0.1: another
// client, as far as the server's per-address limits can tell, whose calls
// the probing process's own goroutines and garbage do not delay.
//
// Usage: go run ./bench/hostile --bin ./vpnfacade [--profile cpu.pprof]
// [--server-arg=--max-connections-per-address=16]
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/bench/procstat"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

func main() {
	bin := flag.String("bin", "./vpnfacade", "the vpnfacade binary to probe")
	count := flag.Int("count", 10000, "endpoints the server's --demo emulator generates")
	rate := flag.Int("rate", 400, "Gets per second of the victim loop")
	phase := flag.Duration("phase", 10*time.Second, "length of each Get loop measurement")
	readers := flag.Int("never-readers", 1000, "clients that ask for a page and never read it")
	slow := flag.Int("slow-bodies", 50, "connections that send their body one byte every 2s")
	logPath := flag.String("log", os.DevNull, "file for the server's log")
	profile := flag.String("profile", "", "file for a CPU profile of the server while the probes run with the Get loop (empty: none)")
	var serverArgs []string
	flag.Func("server-arg", "an extra argument for the server (repeatable), e.g. --server-arg=--max-concurrent-lists=2", func(s string) error {
		serverArgs = append(serverArgs, s)
		return nil
	})
	victim := flag.String("victim", "", "internal: run only the Get loop against this URL, ids on stdin, latencies on stdout")
	flag.Parse()
	if *victim != "" {
		if err := runVictim(*victim, *rate, *phase); err != nil {
			fmt.Fprintln(os.Stderr, "hostile: victim:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *count, *rate, *phase, *readers, *slow, *logPath, *profile, serverArgs); err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{}}}
}

func run(bin string, count, rate int, phase time.Duration, readers, slow int, logPath, profile string, serverArgs []string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"--demo", "--demo-count", fmt.Sprint(count), "--listen", "127.0.0.1:0",
		"--log-format", "json", "--refresh-interval", "1h"}
	if profile != "" {
		args = append(args, "--pprof-listen", "127.0.0.1:0")
	}
	srv, err := startServer(bin, append(args, serverArgs...), logf)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			fmt.Printf("\nserver exit after SIGTERM: %v\n", err)
		} else {
			fmt.Printf("\nserver exit after SIGTERM: 0\n")
		}
	}()
	pid, addr := srv.pid(), strings.TrimPrefix(srv.url, "http://")
	h2c := h2cClient() // the probes' connections
	client := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), srv.url)
	ids, err := waitIDs(client)
	if err != nil {
		return err
	}
	fmt.Printf("server: %s %s, pid %d, %d endpoints; Get loop: %d/s over Connect (proto, h2c)\n", bin, strings.Join(serverArgs, " "), pid, count, rate)
	fmt.Printf("load average at start: %s\n\n", procstat.LoadAverage())

	victim := &victimProcess{url: srv.url, ids: ids, rate: rate, phase: phase}
	idle := measureIdle(pid, 2*time.Second)
	alone0 := cpuTime(pid)
	base, err := victim.run()
	if err != nil {
		return err
	}
	cpuAlone := cpuTime(pid) - alone0

	fmt.Println("| probe | server CPU | answer |")
	fmt.Println("|---|---:|---|")
	probes := requestProbes(srv.url, h2c)
	for _, p := range probes {
		// Each probe is sent ten times, for a resolution of 1 ms.
		cost, answer := isolated(pid, idle, func() string {
			var answer string
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				answer = p.run(ctx)
				cancel()
			}
			return answer
		})
		fmt.Printf("| %s | %.1f ms | %s |\n", p.name, ms(cost)/10, clip(answer))
	}
	var peak int64
	before := rss(pid)
	_, sys0 := cpuSplit(pid)
	cost, answer := isolated(pid, idle, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var tried, ended int
		done := make(chan struct{})
		go func() { tried, ended = neverReaders(ctx, addr, readers); close(done) }()
		for ctx.Err() == nil {
			peak = max(peak, rss(pid))
			time.Sleep(50 * time.Millisecond)
		}
		<-done
		return fmt.Sprintf("%d connections tried, %d still open after 5 s (the server refused or reset %d); server RSS %d MiB before, peak %d MiB",
			tried, tried-ended, ended, before>>20, peak>>20)
	})
	_, sys1 := cpuSplit(pid)
	fmt.Printf("| %d clients ask for a 1,000-endpoint page and never read | %.1f ms (%.0f ms of it in the kernel) | %s |\n", readers, ms(cost), ms(sys1-sys0), answer)
	cost, answer = isolated(pid, idle, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		closed, longest := slowBodies(ctx, addr, slow)
		return fmt.Sprintf("server closed %d of %d, the last after %.1f s", closed, slow, longest.Seconds())
	})
	fmt.Printf("| %d connections send a body byte every 2 s | %.1f ms | %s |\n", slow, ms(cost), answer)

	// Everything at once, while the Get loop runs (in its own process), and
	// until it is done.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent int
	var mu sync.Mutex
	for c := range 3 {
		wg.Go(func() {
			for i := c; ctx.Err() == nil; i++ {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				probes[i%len(probes)].run(pctx)
				pcancel()
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	wg.Go(func() { neverReaders(ctx, addr, readers) })
	wg.Go(func() { slowBodies(ctx, addr, slow) })
	if profile != "" {
		wg.Go(func() {
			if err := fetchProfile(srv.pprofURL, phase, profile); err != nil {
				fmt.Fprintln(os.Stderr, "hostile: profile:", err)
			}
		})
	}
	user0, sys0 := cpuSplit(pid)
	self0 := cpuTime(os.Getpid())
	under, err := victim.run()
	user1, sys1 := cpuSplit(pid)
	self1 := cpuTime(os.Getpid())
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}

	fmt.Printf("\n| Get loop (%d/s, %s) | p50 | p99 | failed |\n|---|---:|---:|---:|\n", rate, phase)
	fmt.Printf("| alone | %.2f ms | %.2f ms | %d of %d |\n", ms(base.quantile(.5)), ms(base.quantile(.99)), base.failed, base.failed+len(base.took))
	fmt.Printf("| under the probes | %.2f ms | %.2f ms | %d of %d |\n", ms(under.quantile(.5)), ms(under.quantile(.99)), under.failed, under.failed+len(under.took))
	fmt.Printf("| ratio | %.2f× | %.2f× | |\n", ratio(under.quantile(.5), base.quantile(.5)), ratio(under.quantile(.99), base.quantile(.99)))
	fmt.Printf("\nalone: server CPU %.0f ms while the Get loop ran\n", ms(cpuAlone))
	fmt.Printf("under the probes: %d probe requests sent, %d never-reading clients and %d slow bodies open; in %s server CPU %.0f ms (user %.0f, system %.0f), probing process CPU %.0f ms\n",
		sent, readers, slow, phase, ms(user1-user0+sys1-sys0), ms(user1-user0), ms(sys1-sys0), ms(self1-self0))
	fmt.Printf("load average at the end: %s\n", procstat.LoadAverage())
	return nil
}

// fetchProfile writes a CPU profile of the server, taken for d, to file.
func fetchProfile(pprofURL string, d time.Duration, file string) error {
	if pprofURL == "" {
		return errors.New("the server logged no pprof address")
	}
	res, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofURL, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitIDs waits until the server answers and returns up to 1,000 ids.
func waitIDs(c clientvpnv1connect.ClientVpnServiceClient) ([]string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := c.ListClientVpnEndpoints(context.Background(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
		if err == nil && len(res.GetClientVpnEndpoints()) > 0 {
			var ids []string
			for _, e := range res.GetClientVpnEndpoints() {
				ids = append(ids, e.GetClientVpnEndpointId())
			}
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no endpoints within 60s: %v (%v)", err, connect.CodeOf(err))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// measureIdle returns the server's CPU per second while nothing is sent.
func measureIdle(pid int, d time.Duration) float64 {
	c0 := cpuTime(pid)
	time.Sleep(d)
	return float64(cpuTime(pid)-c0) / float64(d)
}

// isolated runs f with nothing else sent and returns the server CPU it
// cost, less idle CPU. Work the server goes on doing after the client has
// its answer, or has left, counts: the measurement ends only once a quarter
// second passes with the server idle again (or after a minute).
func isolated(pid int, idle float64, f func() string) (time.Duration, string) {
	start, c0 := time.Now(), cpuTime(pid)
	answer := f()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		w0 := cpuTime(pid)
		time.Sleep(250 * time.Millisecond)
		if cpuTime(pid)-w0 <= 10*time.Millisecond+time.Duration(idle*float64(250*time.Millisecond)) {
			break
		}
	}
	cost := cpuTime(pid) - c0 - time.Duration(idle*float64(time.Since(start)))
	return max(cost, 0), answer
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func clip(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}
