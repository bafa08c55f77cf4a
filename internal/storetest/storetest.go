// Package storetest opens Redis stores for tests: tuned to notice failures
// fast, logging to the test, closed when it ends.
package storetest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade/store"
)

// Redis returns a Redis store on url, closed when the test ends, tuned to
// notice failures fast.
func Redis(t testing.TB, url, namespace string) *store.Redis {
	t.Helper()
	return Open(t, store.RedisOptions{
		URL:            url,
		Namespace:      namespace,
		Grace:          time.Minute,
		PollInterval:   50 * time.Millisecond,
		CommandTimeout: 300 * time.Millisecond,
	})
}

// Open returns a Redis store with opts, logging warnings to the test,
// closed when the test ends.
func Open(t testing.TB, opts store.RedisOptions) *store.Redis {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := store.NewRedis(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewRedis(%s): %v", opts.URL, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// RawClient is a plain client for looking at the keys a store wrote.
func RawClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}
