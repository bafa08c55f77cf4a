package redistest

import (
	"os/exec"
	"syscall"
)

// configureProcess asks the kernel to kill redis-server when the test
// binary dies (a timeout panic, a SIGKILL) before its cleanups run.
func configureProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
