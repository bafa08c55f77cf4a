package lease_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/logtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/lease"
)

// TestLeaseFlushedKeysAreNamed: FLUSHALL removes the lease key; the holder
// steps down saying the key is gone, not that another holder took it.
func TestLeaseFlushedKeysAreNamed(t *testing.T) {
	t.Parallel()
	const ttl = 900 * time.Millisecond
	srv := redistest.Start(t)
	st := storetest.Redis(t, srv.URL(), "flushed")
	var logs logtest.Buffer
	l, err := lease.New(st, lease.Options{Owner: "a", TTL: ttl, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("lease.New: %v", err)
	}
	began := make(chan struct{}, 10)
	causes := make(chan error, 10)
	runLease(t, l, func(ctx context.Context, _ uint64) error {
		began <- struct{}{}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil
	})
	select {
	case <-began:
	case <-time.After(10 * time.Second):
		t.Fatal("the lease was not taken within 10s")
	}
	if err := storetest.RawClient(t, srv.URL()).FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	var cause error
	select {
	case cause = <-causes:
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not step down within 10s of FLUSHALL")
	}
	if !errors.Is(cause, lease.ErrLeaseLost) || !strings.Contains(cause.Error(), "the lease key is gone") {
		t.Errorf("term ended with cause %v; want ErrLeaseLost saying the key is gone", cause)
	}
	out := logs.String()
	if !strings.Contains(out, "the writer lease key is gone from Redis") || strings.Contains(out, "taken by another holder") {
		t.Errorf("log after FLUSHALL:\n%s\nwant the key named gone, not taken by another holder", out)
	}
}
