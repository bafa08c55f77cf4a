package main

import (
	"io"

	"github.com/vpnfacade/vpnfacade/upstream"
)

// ConfigureUpstream makes Run pass the upstream's configuration through f
// before using it (in-process tests point it at their emulator).
func (m *Main) ConfigureUpstream(f func(*upstream.Options)) { m.configureUpstream = f }

// RunAccessCommand is `vpnfacade access args...`.
func RunAccessCommand(args []string, stdout, stderr io.Writer) error {
	return runAccessCommand(args, stdout, stderr)
}

// RunCommand is the command's main: TestMain runs it when the test binary
// is executed under the command's name, so that the process tests run the
// command without building it apart.
func RunCommand() { main() }
