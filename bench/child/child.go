// Package child holds what the benchmark programs do to the processes they
// measure: pick loopback ports, point a vpnfacade at an EC2 emulator, and
// stop a process with SIGTERM, waiting for it to exit.
package child

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"time"
)

// FreePort returns a loopback TCP port nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("child: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// EmulatorEnv returns the environment (to append to os.Environ or to a
// command's own) that makes a vpnfacade read the EC2 emulator at simURL
// for EC2 and STS, with static bench credentials, region as the default
// region, and no AWS config or credentials file of the machine's.
func EmulatorEnv(simURL, region string) []string {
	return []string{
		"AWS_ENDPOINT_URL_EC2=" + simURL, "AWS_ENDPOINT_URL_STS=" + simURL,
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=" + region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// Stop sends SIGTERM to cmd's process and waits for it to exit, returning
// what Wait returns. A process still running after grace is killed, and
// Stop says so.
func Stop(cmd *exec.Cmd, grace time.Duration) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("child: no exit within " + grace.String() + " of SIGTERM; killed")
	}
}
