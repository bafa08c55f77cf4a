package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
)

// process is a child process the benchmark started.
type process struct {
	name string
	cmd  *exec.Cmd
}

// startProcess runs bin with args and env and, when ready is set, waits
// for a line of its stderr that matches it; it returns the submatches. All
// output goes to logw.
func startProcess(name, bin string, args, env []string, ready *regexp.Regexp, logw io.Writer) (*process, []string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logw
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(logw, "%s: %s\n", name, sc.Text())
			if ready != nil {
				if m := ready.FindStringSubmatch(sc.Text()); m != nil {
					select {
					case found <- m:
					default:
					}
				}
			}
		}
	}()
	p := &process{name: name, cmd: cmd}
	if ready == nil {
		return p, nil, nil
	}
	select {
	case m := <-found:
		return p, m, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, nil, fmt.Errorf("%s was not ready within 60s", name)
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit.
func (p *process) stop() error { return child.Stop(p.cmd, 30*time.Second) }

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cpuTime returns the CPU time pid has used so far (0 if it cannot be read).
func cpuTime(pid int) time.Duration { t, _ := procstat.CPU(pid); return t.Total() }

// rssOf returns VmRSS of pid in bytes (0 if it cannot be read).
func rssOf(pid int) int64 { m, _ := procstat.ReadMemory(pid); return m.RSS }
