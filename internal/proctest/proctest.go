// Package proctest builds this module's commands and runs them as real
// processes in tests: it waits for the line a command prints when it is
// ready, keeps its output for failure messages, and stops it on cleanup.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the package at pkg (e.g. "github.com/vpnfacade/vpnfacade/cmd/vpnfacade")
// into dir and returns the binary's path. Call it from TestMain or once per
// test; the Go build cache makes repeated builds cheap.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out.String())
	}
	return bin, nil
}

// Process is a running command.
type Process struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // stdout and stderr, interleaved
	done chan struct{}
	err  error // exit status, once done is closed
}

// Start runs bin with args and env (added to the test's environment) and
// waits up to timeout for a line of its output matching ready. It returns
// the process and the submatches of that line. The process is killed on
// test cleanup.
func Start(t testing.TB, bin string, args, env []string, ready *regexp.Regexp, timeout time.Duration) (*Process, []string) {
	t.Helper()
	p := &Process{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = pw.Close()
	}()
	matched := make(chan []string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if m := ready.FindStringSubmatch(line); m != nil {
				select {
				case matched <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { p.Kill() })
	select {
	case m := <-matched:
		return p, m
	case <-p.done:
		t.Fatalf("%s exited before it was ready (%v); output:\n%s", filepath.Base(bin), p.err, p.Output())
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("%s was not ready within %s; output:\n%s", filepath.Base(bin), timeout, p.Output())
	}
	return nil, nil
}

// Output returns everything the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Count returns how many lines printed so far contain s.
func (p *Process) Count(s string) int {
	return strings.Count(p.Output(), s)
}

// Signal sends sig to the process (and its process group).
func (p *Process) Signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; it
// returns the exit error (nil for a clean exit).
func (p *Process) Stop(timeout time.Duration) error {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not exit within %s of SIGTERM", timeout)
	}
}

// Kill sends SIGKILL (resuming a stopped process first is not needed: the
// kernel delivers SIGKILL to stopped processes) and waits for the exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Logf("process %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
