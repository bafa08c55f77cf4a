package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/ec2sim"
)

// TestBinaryPrintsItsAddress builds ec2sim, starts it as other tools do and
// checks the one line it prints, that it answers there, and that it stops
// cleanly on SIGTERM.
func TestBinaryPrintsItsAddress(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--count", "2000", "--regions", "eu-west-1,us-east-1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("ec2sim printed nothing within 30s")
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "ec2sim listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("first line %q, want \"ec2sim listening on http://127.0.0.1:PORT\"", line)
	}

	resp, err := http.PostForm(base, url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}, "MaxResults": {"5"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Count(string(body), "<clientVpnEndpointId>") != 5 || !strings.Contains(string(body), "<nextToken>") {
		t.Errorf("first page from the binary: %d\n%.500s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("ec2sim did not stop within 10s of SIGTERM")
	}
}

// buildBinary builds ec2sim into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ec2sim")
	build := exec.CommandContext(t.Context(), filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestHelpExitsZero runs the binary as a newcomer does first: asking for
// help succeeds and lists the flags; a flag that does not exist fails.
func TestHelpExitsZero(t *testing.T) {
	bin := buildBinary(t)
	for _, arg := range []string{"--help", "-h"} {
		out, err := exec.CommandContext(t.Context(), bin, arg).CombinedOutput()
		if err != nil {
			t.Errorf("ec2sim %s: %v, want exit status 0\n%s", arg, err, out)
		}
		for _, want := range []string{"Usage: ec2sim", "-listen", "-throttle", "-regions"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ec2sim %s printed no %q:\n%s", arg, want, out)
			}
		}
		if strings.Contains(string(out), "help requested") {
			t.Errorf("ec2sim %s reports the help request as an error:\n%s", arg, out)
		}
	}
	out, err := exec.CommandContext(t.Context(), bin, "--no-such-flag").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "no-such-flag") {
		t.Errorf("ec2sim --no-such-flag: %v, want a non-zero exit naming the flag\n%s", err, out)
	}
}

func TestFlags(t *testing.T) {
	c, err := parseFlags([]string{"--listen", "127.0.0.1:9", "--count", "7", "--regions", "eu-west-1, us-east-1",
		"--accounts", "222222222222", "--throttle", "10/2.5", "--fail-rate", "0.1", "--latency", "5ms", "--mutate-every", "3s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:9" || c.count != 7 || len(c.regions) != 2 || c.regions[1] != "us-east-1" ||
		c.accounts[0] != "222222222222" || c.throttle != (ec2sim.Throttle{Burst: 10, PerSecond: 2.5}) ||
		c.failRate != 0.1 || c.latency != 5*time.Millisecond || c.mutateEvery != 3*time.Second {
		t.Errorf("parsed %+v", c)
	}
	if c, _ := parseFlags([]string{"--throttle", "aws"}); c.throttle != ec2sim.AWSThrottle() {
		t.Errorf("--throttle aws = %+v", c.throttle)
	}
	if c, _ := parseFlags(nil); c.listen != "127.0.0.1:8081" || c.throttle.Enabled() {
		t.Errorf("defaults %+v", c)
	}
	for _, args := range [][]string{
		{"--throttle", "fast"}, {"--throttle", "0/5"}, {"--count", "-1"}, {"--regions", ""}, {"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
