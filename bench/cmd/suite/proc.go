package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/procstat"
)

// proc is a child process whose output is kept, line by line, so that the
// suite can wait for a line and read what was logged.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time // just before exec

	mu     sync.Mutex
	lines  []string
	times  []time.Time   // when each line arrived
	notify chan struct{} // closed and replaced on every new line
	done   chan struct{} // closed once the process exited and output ended
	err    error         // exit status, once done
}

// startProc runs bin with args, env added to the environment, its output
// copied to logPath (when not empty) and kept.
func startProc(name, bin string, args, env []string, logPath string) (*proc, error) {
	p := &proc{name: name, notify: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var logFile io.Writer = io.Discard
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		logFile = f
		defer func() {
			go func() { <-p.done; _ = f.Close() }()
		}()
	}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() {
		exitErr = p.cmd.Wait()
		close(exited)
		_ = pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.times = append(p.times, time.Now())
			close(p.notify)
			p.notify = make(chan struct{})
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
		<-exited
		p.mu.Lock()
		p.err = exitErr
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// count returns how many lines the process printed so far.
func (p *proc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// lineTime returns when line i arrived.
func (p *proc) lineTime(i int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.times[i]
}

// linesFrom returns the lines printed from index from on.
func (p *proc) linesFrom(from int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines[min(from, len(p.lines)):]...)
}

// await waits up to timeout for a line, from index from on, matching re,
// and returns its index and submatches.
func (p *proc) await(ctx context.Context, from int, re *regexp.Regexp, timeout time.Duration) (int, []string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i := from; ; {
		p.mu.Lock()
		lines, notify := p.lines, p.notify
		p.mu.Unlock()
		for ; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return i, m, nil
			}
		}
		select {
		case <-notify:
		case <-p.done:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i >= n {
				return 0, nil, fmt.Errorf("%s exited (%v) before printing a line matching %s; last output:\n%s", p.name, p.err, re, p.tail(20))
			}
		case <-deadline.C:
			return 0, nil, fmt.Errorf("%s printed no line matching %s within %s; last output:\n%s", p.name, re, timeout, p.tail(20))
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// tail returns the last n lines of output.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}

// stop sends SIGTERM and waits up to timeout for the exit, then kills.
func (p *proc) stop(timeout time.Duration) error {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// cpuTime returns the user and system CPU time pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	t, err := procstat.CPU(pid)
	return t.Total(), err
}

// selfCPU returns the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
