// Package prereq finds the programs outside Go that tests run — python3
// with boto3, headless chromium, redis-server, the AWS CLI, curl — and, when one is missing,
// fails the test with the one command that installs it. Tests use real
// parts and do not skip: a missing part is a red test that says what to do.
package prereq

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Python3WithBoto3 returns a python3 that can import boto3: the one on
// PATH, else /usr/bin/python3 (where Debian's python3-boto3 installs, when
// PATH starts with another python3). Without one, it fails t.
func Python3WithBoto3(t testing.TB) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	var lastOut []byte
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := exec.Command(p, "-c", "import boto3").CombinedOutput()
		if err == nil {
			return p
		}
		lastOut = out
	}
	t.Fatalf("python3 with boto3 is missing (the EC2 compatibility tests read the EC2 endpoint with boto3): install it with\n\t%s\nor run ./test, which installs every test prerequisite%s",
		InstallCommand("python3-boto3"), lastLine(lastOut))
	return ""
}

// Chromium returns the path of chromium (or Ubuntu's chromium-browser).
// Without it, it fails t.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium is not installed (the browser page test loads the page in headless Chromium): install it with\n\t%s\nor run ./test, which installs every test prerequisite",
		InstallCommand("chromium"))
	return ""
}

// RedisServer returns the path of redis-server: the one on PATH, else
// /usr/bin/redis-server. Without it, it fails t.
func RedisServer(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	t.Fatalf("redis-server is not installed (these tests run a real Redis): install it with\n\t%s\nor run ./test, which installs every test prerequisite",
		InstallCommand("redis-server"))
	return ""
}

// Command returns the path of the program name, which Debian's package pkg
// provides; purpose says what the tests use it for. Without it, it fails t
// with the command that installs it.
func Command(t testing.TB, name, pkg, purpose string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s is not installed (%s): install it with\n\t%s\nor run ./test, which installs every test prerequisite",
		name, purpose, InstallCommand(pkg))
	return ""
}

// InstallCommand is the command that installs the Debian package pkg on
// this machine: apt-get (through sudo unless running as root) on Linux,
// Homebrew or pip on macOS.
func InstallCommand(pkg string) string {
	if runtime.GOOS == "darwin" {
		switch pkg {
		case "redis-server":
			return "brew install redis"
		case "python3-boto3":
			return "python3 -m pip install boto3"
		case "chromium":
			return "brew install --cask chromium"
		case "awscli", "curl", "openssl":
			return "brew install " + pkg
		}
	}
	if pkg == "chromium" && isUbuntu() {
		pkg = "chromium-browser"
	}
	sudo := "sudo "
	if os.Geteuid() == 0 {
		sudo = ""
	}
	return sudo + "apt-get install -y " + pkg
}

// isUbuntu reports whether /etc/os-release names Ubuntu or a derivative,
// whose Chromium package is chromium-browser.
func isUbuntu() bool {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && (k == "ID" || k == "ID_LIKE") &&
			slices.Contains(strings.Fields(strings.Trim(v, `"`)), "ubuntu") {
			return true
		}
	}
	return false
}

// lastLine formats the last line of a failed python3's output (the
// ImportError), for the failure message.
func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return "\n(python3 said: " + s + ")"
}
