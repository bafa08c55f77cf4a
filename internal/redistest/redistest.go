// Package redistest starts throwaway redis-server processes for tests: each
// on a free loopback port, without persistence, killed when the test ends.
// A Server can be paused, killed and restarted on the same port, for
// failure drills. It never touches a Redis it did not start.
//
// redis-server must be installed (Debian package redis-server); when it is
// not, the test fails with the command that installs it instead of skipping.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// readyTimeout bounds how long a starting server may take to answer PING.
const readyTimeout = 10 * time.Second

// startAttempts is how many free ports Start tries: another process may
// take a port between the probe and redis-server binding it.
const startAttempts = 5

// Server is one redis-server process started by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string // extra arguments, e.g. cluster mode
	// sentinel, when set, is the master a Sentinel started by StartSentinel
	// monitors, as "name host port".
	sentinel string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when cmd has exited
}

// Start starts a redis-server on a free loopback port and waits until it
// answers. Extra arguments are passed to redis-server ("--maxmemory",
// "10mb", …). The server is killed when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, false, args)
}

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under the name masterName (quorum 1), and waits until it
// answers. It is killed when the test ends.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	return startWith(t, false, nil, masterName+" 127.0.0.1 "+strconv.Itoa(master.Port()))
}

func start(t testing.TB, clusterBus bool, args []string) *Server {
	t.Helper()
	return startWith(t, clusterBus, args, "")
}

func startWith(t testing.TB, clusterBus bool, args []string, sentinel string) *Server {
	t.Helper()
	bin := lookBinary(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: args, sentinel: sentinel}
	t.Cleanup(s.Kill)
	var lastErr error
	for range startAttempts {
		port, err := freePort(clusterBus)
		if err != nil {
			t.Fatalf("redistest: find a free loopback port: %v", err)
		}
		s.port = port
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

func lookBinary(t testing.TB) string {
	t.Helper()
	return prereq.RedisServer(t)
}

// freePort returns a loopback port nobody listens on; with clusterBus, the
// port 10000 above it (Redis Cluster's bus) is free too.
func freePort(clusterBus bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !clusterBus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// launch starts the process on s.port and waits until it answers PING.
func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "warning",
	}
	args = append(args, s.args...)
	if s.sentinel != "" {
		// Sentinel needs a writable configuration file as its first argument.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte("sentinel monitor "+s.sentinel+" 1\n"), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", conf, err)
		}
		args = append([]string{conf, "--sentinel"}, args...)
	}
	cmd := exec.Command(s.bin, args...)
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	configureProcess(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.out, s.exited = cmd, out, exited
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, out.String())
		default:
		}
		if ping(s.Addr()) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on port %d did not answer PING within %s: %s", s.port, readyTimeout, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends an inline PING and expects +PONG (or, from a server with a
// password, -NOAUTH).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// A server started with requirepass answers NOAUTH: it is up too.
	if line != "+PONG\r\n" && !strings.HasPrefix(line, "-NOAUTH ") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Addr returns "127.0.0.1:<port>".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns "redis://127.0.0.1:<port>".
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Port returns the port the server listens on; it survives Restart.
func (s *Server) Port() int { return s.port }

// Pause stops the process (SIGSTOP): it keeps its connections and data but
// answers nothing until Resume, like a frozen or partitioned server.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redistest: signal %v: the server is not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v to redis-server on port %d: %v", sig, s.port, err)
	}
}

// Kill kills the process (SIGKILL) and waits for it to exit; its data is
// lost. It does nothing when the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart kills the server if it runs and starts a new, empty one on the
// same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range startAttempts {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
}

// Output returns the last lines the server printed, for failure messages.
func (s *Server) Output() string {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
