package main_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2sim"
)

// healthcheck runs `vpnfacade healthcheck args...` with env added to a
// clean environment and returns its exit code, stdout and stderr.
func healthcheck(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), facadeBinary(t), append([]string{"healthcheck"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running healthcheck: %v", err)
	}
	return code, stdout.String(), stderr.String()
}

// TestHealthcheckSubcommand runs the subcommand the image's HEALTHCHECK and
// the compose file use against real vpnfacade processes: one serving, one
// that cannot read AWS and so has no snapshot, and an address nobody
// listens on.
func TestHealthcheckSubcommand(t *testing.T) {
	t.Parallel()
	serving := startFacade(t, startSim(t, 50, ec2sim.Options{}), "")
	waitServing(t, serving.url)
	hostPort := strings.TrimPrefix(serving.url, "http://")

	t.Run("serving, by --addr", func(t *testing.T) {
		code, stdout, stderr := healthcheck(t, nil, "--addr", serving.url)
		if code != 0 || strings.TrimSpace(stdout) != "SERVING" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and SERVING", code, stdout, stderr)
		}
	})
	t.Run("serving, address from VPNFACADE_LISTEN", func(t *testing.T) {
		code, stdout, stderr := healthcheck(t, []string{"VPNFACADE_LISTEN=" + hostPort})
		if code != 0 || strings.TrimSpace(stdout) != "SERVING" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and SERVING", code, stdout, stderr)
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		code, _, stderr := healthcheck(t, nil, "--addr", hostPort, "--service", "no.such.Service")
		if code != 1 || !strings.Contains(stderr, "not_found") {
			t.Errorf("exit %d, stderr %q; want 1 and not_found", code, stderr)
		}
	})

	t.Run("no snapshot yet", func(t *testing.T) {
		failing := startFacade(t, startSim(t, 50, ec2sim.Options{FailRate: 1}), "")
		code, stdout, stderr := healthcheck(t, nil, "--addr", failing.url)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "NOT_SERVING") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and NOT_SERVING", code, stdout, stderr)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		_ = ln.Close()
		code, _, stderr := healthcheck(t, nil, "--addr", closed, "--timeout", "2s")
		if code != 1 || !strings.Contains(stderr, closed) {
			t.Errorf("exit %d, stderr %q; want 1 naming %s", code, stderr, closed)
		}
	})

	t.Run("bad arguments exit 1, never Docker's reserved 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"--no-such-flag"},
			{"--addr", "ftp://" + hostPort},
			{"--addr", "not-an-address"},
			{"--timeout", "0s"},
			{"extra"},
		} {
			code, _, stderr := healthcheck(t, nil, args...)
			if code != 1 || stderr == "" {
				t.Errorf("healthcheck %q: exit %d, stderr %q; want 1 with a message", args, code, stderr)
			}
		}
		long := strings.Repeat("x", 500)
		_, _, stderr := healthcheck(t, nil, "--addr", long)
		if strings.Contains(stderr, strings.Repeat("x", 65)) {
			t.Errorf("the error repeats more than 64 characters of input: %q", stderr)
		}
	})
}
