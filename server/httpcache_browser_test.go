package server_test

import (
	"context"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/web"
)

// statusLog records the status of each GET of ListClientVpnEndpoints and
// tells a waiter when one arrives.
type statusLog struct {
	mu       sync.Mutex
	statuses []int
	changed  chan struct{}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (l *statusLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		l.mu.Lock()
		l.statuses = append(l.statuses, sw.status)
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
	})
}

// waitFor waits until a List GET answered status, or fails at ctx's end.
func (l *statusLog) waitFor(ctx context.Context, t *testing.T, status int) {
	t.Helper()
	for {
		l.mu.Lock()
		seen := slices.Contains(l.statuses, status)
		all := slices.Clone(l.statuses)
		l.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-l.changed:
		case <-ctx.Done():
			t.Fatalf("no List GET answered %d; the page's List GETs answered %v", status, all)
		}
	}
}

// TestBrowserPageRevalidates loads the browser page in headless Chromium,
// then reloads it: the page reads with Connect GET, its browser keeps the
// answer and revalidates it, and the server answers the unchanged page
// with 304. RefreshInterval is left 0, so answers are no-cache and the
// browser must revalidate rather than reuse them silently.
func TestBrowserPageRevalidates(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("this test needs chromium on PATH (apt-get install chromium): %v", err)
	}
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(30)}); err != nil {
		t.Fatal(err)
	}
	log := &statusLog{changed: make(chan struct{}, 1)}
	url := startServer(t, log.wrap(server.NewHandler(server.Options{
		Reader: server.NewReader(server.ReaderOptions{Store: st}), Registerer: prometheus.NewRegistry(), Page: web.Handler(),
	})))

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	log.waitFor(ctx, t, http.StatusOK)
	if _, err := chromedp.Run(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	log.waitFor(ctx, t, http.StatusNotModified)
}
