package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
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
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("no exit within 30s of SIGTERM")
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times.
const clockTicks = 100

// cpuTime returns the user and system CPU time pid has used, from
// /proc/PID/stat (10 ms resolution).
func cpuTime(pid int) time.Duration {
	user, system := cpuSplit(pid)
	return user + system
}

// cpuSplit returns the user and the system (kernel) CPU time pid has used,
// apart: the kernel's part is what accepting, reading and closing
// connections costs in the TCP stack.
func cpuSplit(pid int) (user, system time.Duration) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime) * time.Second / clockTicks, time.Duration(stime) * time.Second / clockTicks
}

// loadAverage returns the first three fields of /proc/loadavg: the 1-, 5-
// and 15-minute load averages of the machine.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// rss returns VmRSS of pid in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
