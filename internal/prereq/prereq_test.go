package prereq

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Fatalf says instead of stopping.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// TestMissingChromiumNamesTheInstallCommand: with chromium nowhere on PATH,
// the test fails with the command that installs it.
func TestMissingChromiumNamesTheInstallCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	if got := Chromium(r); got != "" {
		t.Fatalf("Chromium found %q on an empty PATH", got)
	}
	want := InstallCommand("chromium")
	if !strings.Contains(r.fatal, want) || !strings.Contains(r.fatal, "./test") {
		t.Errorf("the failure says %q; want it to name %q and ./test", r.fatal, want)
	}
}

// TestInstallCommand: Homebrew on macOS, else apt-get, through sudo
// unless root.
func TestInstallCommand(t *testing.T) {
	got := InstallCommand("redis-server")
	want := "apt-get install -y redis-server"
	if os.Geteuid() != 0 {
		want = "sudo " + want
	}
	if runtime.GOOS == "darwin" {
		want = "brew install redis"
	}
	if got != want {
		t.Errorf("InstallCommand(redis-server) = %q, want %q", got, want)
	}
}
