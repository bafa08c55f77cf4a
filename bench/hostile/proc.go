package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
)

// server is the vpnfacade binary under test.
type server struct {
	cmd      *exec.Cmd
	url      string
	pprofURL string // empty without --pprof-listen
}

var (
	listening      = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(https?://[^"]+)"`)
	pprofListening = regexp.MustCompile(`"msg":"pprof listening","addr":"(http://[^"]+)"`)
)

// startServer runs bin with args and waits for its listening line; the
// rest of its log goes to logw.
func startServer(bin string, args []string, logw io.Writer) (*server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	found := make(chan string, 1)
	var pprofURL atomic.Value
	pprofURL.Store("")
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logw, sc.Text())
			if m := pprofListening.FindStringSubmatch(sc.Text()); m != nil {
				pprofURL.Store(m[1])
			}
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case url := <-found:
		// --pprof-listen logs before the API listens.
		return &server{cmd: cmd, url: url, pprofURL: pprofURL.Load().(string)}, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("the server did not listen within 60s")
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit.
func (s *server) stop() error { return child.Stop(s.cmd, 30*time.Second) }

// cpuTime returns the CPU time pid has used so far (0 if it cannot be read).
func cpuTime(pid int) time.Duration { t, _ := procstat.CPU(pid); return t.Total() }

// cpuSplit returns the user and the system (kernel) CPU time pid has used.
func cpuSplit(pid int) (user, system time.Duration) {
	t, _ := procstat.CPU(pid)
	return t.User, t.System
}

// rss returns VmRSS of pid in bytes (0 if it cannot be read).
func rss(pid int) int64 { m, _ := procstat.ReadMemory(pid); return m.RSS }
