package child_test

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/child"
)

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	ln.Close()
}

func TestStop(t *testing.T) {
	// A process that exits on SIGTERM: its exit is reported as the signal's.
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := child.Stop(cmd, time.Minute); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Stop(sleep) = %v, want the SIGTERM exit", err)
	}
	// One that ignores SIGTERM is killed after the grace.
	cmd = exec.Command("sh", "-c", "trap '' TERM; echo ready; exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil { // the trap is set
		t.Fatal(err)
	}
	if err := child.Stop(cmd, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop(process ignoring SIGTERM) = %v, want it killed", err)
	}
}

func TestEmulatorEnvNamesTheEmulator(t *testing.T) {
	env := strings.Join(child.EmulatorEnv("http://127.0.0.1:1", "eu-west-1"), " ")
	for _, want := range []string{"AWS_ENDPOINT_URL_EC2=http://127.0.0.1:1", "AWS_ENDPOINT_URL_STS=http://127.0.0.1:1", "AWS_REGION=eu-west-1", "AWS_CONFIG_FILE=/dev/null"} {
		if !strings.Contains(env, want) {
			t.Errorf("EmulatorEnv lacks %s: %s", want, env)
		}
	}
}
