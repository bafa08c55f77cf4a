package deploy_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/vpnfacade/vpnfacade/internal/proctest"
)

// repoRoot is the main module's directory, relative to this one.
const repoRoot = ".."

// Binaries built once, from the main module itself (its go.mod, not this
// module's), as the Dockerfile builds them.
var facadeBin, simBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vpnfacade-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/vpnfacade", "./cmd/ec2sim")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	facadeBin, simBin = filepath.Join(dir, "vpnfacade"), filepath.Join(dir, "ec2sim")
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var listeningLine = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(http://[^"]+)"`)

// startDemo runs `vpnfacade --demo` on a loopback port and returns its URL.
func startDemo(t *testing.T) string {
	t.Helper()
	_, m := proctest.Start(t, facadeBin,
		[]string{"--demo", "--demo-count", "50", "--listen", "127.0.0.1:0", "--log-format", "json"},
		[]string{"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"},
		listeningLine, 60*time.Second)
	return m[1]
}

var envInHelp = regexp.MustCompile(`\[(VPNFACADE_[A-Z_]+)\]`)

// knownSettings returns the VPNFACADE_* variables `vpnfacade --help` lists.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(facadeBin, "--help")
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // --help exits 0 or 2 depending on the flag package; the text is what matters
	known := map[string]bool{}
	for _, m := range envInHelp.FindAllStringSubmatch(out.String(), -1) {
		known[m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("--help lists only %d settings:\n%s", len(known), out.String())
	}
	return known
}

// checkSettings fails for each VPNFACADE_* name in env the binary does not know.
func checkSettings(t *testing.T, where string, names []string) {
	t.Helper()
	known := knownSettings(t)
	sort.Strings(names)
	for _, name := range names {
		if len(name) > len("VPNFACADE_") && name[:len("VPNFACADE_")] == "VPNFACADE_" && !known[name] {
			t.Errorf("%s sets %s, which vpnfacade does not read", where, name)
		}
	}
}

// waitServing polls the health service until it reports SERVING.
func waitServing(t *testing.T, url string) {
	t.Helper()
	health := grpchealth.NewClient(http.DefaultClient, url)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
		if err == nil && res.Status == grpchealth.StatusServing {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became SERVING", url)
}
