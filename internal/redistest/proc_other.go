//go:build !linux

package redistest

import "os/exec"

// configureProcess does nothing where the kernel cannot tie the server's
// life to the test binary's; cleanups still kill it.
func configureProcess(*exec.Cmd) {}
