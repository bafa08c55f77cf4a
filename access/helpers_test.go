package access

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// newAuthenticator writes file to a temporary directory and returns an
// Authenticator on it, with opts' other fields.
func newAuthenticator(t *testing.T, file string, opts Options) *Authenticator {
	t.Helper()
	opts.Path = filepath.Join(t.TempDir(), "access.yaml")
	if err := os.WriteFile(opts.Path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func principalName(p *Principal) string {
	if p == nil {
		return "<nil>"
	}
	return p.Name()
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeTemp writes data to a file in a temporary directory and returns its path.
func writeTemp(tb testing.TB, data string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "access.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
