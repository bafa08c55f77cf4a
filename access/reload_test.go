package access

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/logtest"
)

// reloadWithin is how soon a changed access file must be in use.
const reloadWithin = 2 * time.Second

// reloadEvents records Options.OnReload calls, so a test waits for reloads
// instead of sleeping.
type reloadEvents struct {
	mu     sync.Mutex
	errs   []error
	signal chan struct{}
}

func newReloadEvents() *reloadEvents { return &reloadEvents{signal: make(chan struct{}, 1)} }

func (e *reloadEvents) onReload(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

func (e *reloadEvents) failures() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, err := range e.errs {
		if err != nil {
			n++
		}
	}
	return n
}

// waitFor checks cond after every reload until it holds, failing the test
// if it does not within reloadWithin.
func (e *reloadEvents) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(reloadWithin)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-e.signal:
		case <-deadline.C:
			t.Fatalf("%s: not within %s of the change", what, reloadWithin)
		}
	}
}

// tokenFile is an access file giving each name its token "token-<name>".
func tokenFile(names ...string) string {
	var b strings.Builder
	b.WriteString("principals:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    tokens_sha256: [%s]\n    accounts: ['*']\n    regions: ['*']\n", n, TokenSHA256("token-"+n))
	}
	return b.String()
}

// replaceFile writes data beside path and renames it over path, as editors
// and configuration tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".access.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// loadLoop sends requests with token-<name> to url until stopped, counting
// successes and failures.
type loadLoop struct {
	ok, failed atomic.Int64
	firstFail  atomic.Value // string
	stop       chan struct{}
	done       chan struct{}
}

func startLoad(t *testing.T, url, name string) *loadLoop {
	l := &loadLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer token-"+name)
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				_ = res.Body.Close()
			}
			if err != nil || res.StatusCode != http.StatusOK {
				l.failed.Add(1)
				l.firstFail.CompareAndSwap(nil, fmt.Sprintf("%v %v", err, res))
				continue
			}
			l.ok.Add(1)
		}
	}()
	return l
}

func (l *loadLoop) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if l.failed.Load() > 0 {
		t.Errorf("load loop: %d of %d requests failed during reloads; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.firstFail.Load())
	}
	if l.ok.Load() == 0 {
		t.Error("load loop sent no request")
	}
}

// authServer answers 200 with the principal's name, 401 on denial.
func authServer(t *testing.T, a *Authenticator) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.HTTP(r)
		if err != nil {
			http.Error(w, string(ReasonOf(err)), http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(p.Name()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func statusOf(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func works(a *Authenticator, token string) bool {
	_, err := a.Bearer(token)
	return err == nil
}

// TestWatchReloads changes the access file while another principal keeps
// calling: a new token works and a removed one stops within reloadWithin,
// for an atomic replace and for an in-place write; a broken file keeps the
// previous one and says why in the log; no request of the other principal
// fails meanwhile.
func TestWatchReloads(t *testing.T) {
	events := newReloadEvents()
	var logs logtest.Buffer
	a := newAuthenticator(t, tokenFile("steady"), Options{
		OnReload: events.onReload,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx, cancel := context.WithCancel(t.Context())
	stopped, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-stopped }()
	srv := authServer(t, a)
	load := startLoad(t, srv.URL, "steady")

	if statusOf(t, srv.URL, "token-new") != http.StatusUnauthorized {
		t.Fatal("token-new works before it is in the file")
	}

	// Atomic replace (rename over the file) adds a principal.
	replaceFile(t, a.opts.Path, tokenFile("steady", "new"))
	events.waitFor(t, "new token after an atomic replace", func() bool { return works(a, "token-new") })
	if got := statusOf(t, srv.URL, "token-new"); got != http.StatusOK {
		t.Errorf("token-new after reload: %d, want 200", got)
	}

	// In-place write removes it.
	if err := os.WriteFile(a.opts.Path, []byte(tokenFile("steady")), 0o600); err != nil {
		t.Fatal(err)
	}
	events.waitFor(t, "removed token after an in-place write", func() bool { return !works(a, "token-new") })
	if got := statusOf(t, srv.URL, "token-new"); got != http.StatusUnauthorized {
		t.Errorf("token-new after removal: %d, want 401", got)
	}

	// A broken file is refused; the previous one stays.
	before := events.failures()
	replaceFile(t, a.opts.Path, tokenFile("steady", "new")+"    bogus: 1\n")
	events.waitFor(t, "broken file reported", func() bool { return events.failures() > before })
	if works(a, "token-new") || !works(a, "token-steady") {
		t.Error("a broken file changed the principals in use")
	}
	if log := logs.String(); !strings.Contains(log, "access file not reloaded; keeping the previous one") || !strings.Contains(log, `unknown key \"bogus\"`) {
		t.Errorf("log does not say why the file was refused:\n%s", log)
	}

	// Fixing it is picked up.
	replaceFile(t, a.opts.Path, tokenFile("steady", "new"))
	events.waitFor(t, "fixed file", func() bool { return works(a, "token-new") })

	load.finish(t)
	t.Logf("load loop: %d requests of principal steady, none failed", load.ok.Load())
}

// TestWatchKubernetesVolume swaps the ..data symlink of a ConfigMap or
// Secret volume, which changes the directory but not the file's own entry.
func TestWatchKubernetesVolume(t *testing.T) {
	dir := t.TempDir()
	write := func(version, data string) {
		vdir := filepath.Join(dir, version)
		if err := os.Mkdir(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vdir, "access.yaml"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(version, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("..v1", tokenFile("steady"))
	if err := os.Symlink(filepath.Join("..data", "access.yaml"), filepath.Join(dir, "access.yaml")); err != nil {
		t.Fatal(err)
	}
	events := newReloadEvents()
	a, err := New(Options{Path: filepath.Join(dir, "access.yaml"), OnReload: events.onReload})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-stopped }()
	load := startLoad(t, authServer(t, a).URL, "steady")

	write("..v2", tokenFile("steady", "new"))
	events.waitFor(t, "new token after a ..data swap", func() bool { return works(a, "token-new") })
	write("..v3", tokenFile("steady"))
	events.waitFor(t, "removed token after a ..data swap", func() bool { return !works(a, "token-new") })
	load.finish(t)
}

// TestReload is what SIGHUP does: reload on demand, no watcher.
func TestReload(t *testing.T) {
	a := newAuthenticator(t, tokenFile("steady"), Options{})
	if err := os.WriteFile(a.opts.Path, []byte(tokenFile("steady", "new")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !works(a, "token-new") {
		t.Error("token-new does not work after Reload")
	}
	if err := os.WriteFile(a.opts.Path, []byte("principals: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload accepted a file without principals")
	}
	if err := os.Remove(a.opts.Path); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload accepted a missing file")
	}
	if !works(a, "token-new") || !works(a, "token-steady") {
		t.Error("a failed reload changed the principals in use")
	}
}

// TestReloadKeepsRateLimits: a reload that does not change a principal's
// limit does not hand it a fresh burst.
func TestReloadKeepsRateLimits(t *testing.T) {
	file := "principals:\n  - name: a\n    tokens_sha256: [" + TokenSHA256("t") + "]\n    accounts: ['*']\n    regions: ['*']\n    rate_limit: {per_second: 0.001, burst: 1}\n"
	a := newAuthenticator(t, file, Options{})
	p, _ := a.Bearer("t")
	if err := Authorize(p); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if err := Authorize(p); ReasonOf(err) != ReasonRateLimited {
		t.Fatalf("second request: %v, want ReasonRateLimited", err)
	}
	if err := os.WriteFile(a.opts.Path, []byte(file+"    admin: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	p, _ = a.Bearer("t")
	if !p.Admin() {
		t.Fatal("reload not applied")
	}
	if err := Authorize(p); ReasonOf(err) != ReasonRateLimited {
		t.Errorf("after a reload with the same limit: %v, want ReasonRateLimited (burst kept)", err)
	}
}
