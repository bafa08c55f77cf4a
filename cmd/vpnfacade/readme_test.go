package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// TestREADMEProductionExample runs the README's production example (mTLS,
// a bearer token and SigV4 keys) as written, with bash, the binary under
// test as vpnfacade, openssl, curl and the AWS CLI, and checks what it
// prints: 401 without credentials, a page with the token, a page with the
// client certificate, endpoint ids through the AWS CLI.
func TestREADMEProductionExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```sh\n# Production example"
	i := bytes.Index(readme, []byte(start))
	if i < 0 {
		t.Fatal("README.md has no production example block")
	}
	script := readme[i+len("```sh\n"):]
	script = script[:bytes.Index(script, []byte("\n```"))+1]
	for _, tool := range []struct{ name, pkg string }{{"bash", "bash"}, {"openssl", "openssl"}, {"curl", "curl"}, {"aws", "awscli"}} {
		prereq.Command(t, tool.name, tool.pkg, "the README's production example runs it")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", string(script))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(facadeBinary(t))+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PORT="+strconv.Itoa(port),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = errors.New("timed out")
		<-done
	}
	log, _ := os.ReadFile(filepath.Join(dir, "vpnfacade.log"))
	if err != nil {
		t.Fatalf("the example failed: %v\nstdout:\n%s\nstderr:\n%s\nvpnfacade.log:\n%s", err, stdout.String(), stderr.String(), log)
	}

	dec := json.NewDecoder(&stdout)
	var status int
	var byToken, byCert struct {
		ClientVpnEndpoints []struct{ Region, AccountId string } `json:"clientVpnEndpoints"`
	}
	var ids []string
	for _, v := range []any{&status, &byToken, &byCert, &ids} {
		if err := dec.Decode(v); err != nil {
			rest, _ := io.ReadAll(dec.Buffered())
			t.Fatalf("reading the example's output: %v (left: %s)", err, rest)
		}
	}
	if status != 401 {
		t.Errorf("without credentials: HTTP %d, want 401", status)
	}
	if len(byToken.ClientVpnEndpoints) != 1 || byToken.ClientVpnEndpoints[0].AccountId != "111111111111" || !strings.HasPrefix(byToken.ClientVpnEndpoints[0].Region, "eu-") {
		t.Errorf("with the dashboard's token: %+v, want one endpoint of account 111111111111 in an EU region", byToken)
	}
	if len(byCert.ClientVpnEndpoints) != 1 {
		t.Errorf("with the client certificate: %+v, want one endpoint", byCert)
	}
	if len(ids) != 5 || !strings.HasPrefix(ids[0], "cvpn-endpoint-") {
		t.Errorf("through the AWS CLI: %q, want 5 endpoint ids", ids)
	}
	if !bytes.Contains(log, []byte(`"msg":"access control on"`)) {
		t.Errorf("vpnfacade did not log that access control is on:\n%s", log)
	}
}
