package store_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/logtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestRedisURLErrorsHideThePassword: whatever is wrong with --redis-url,
// the error names the problem without the credentials.
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-Pw"
	for name, url := range map[string]string{
		"bad port":                      "redis://:" + pw + "@127.0.0.1:notaport",
		"port out of range":             "redis://user:" + pw + "@127.0.0.1:99999999",
		"bad database":                  "redis://:" + pw + "@127.0.0.1:6379/x",
		"bad query option":              "redis://:" + pw + "@127.0.0.1:6379?pool_size=many",
		"unknown query option":          "redis://:" + pw + "@127.0.0.1:6379?nonsense=1",
		"unknown scheme":                "http://:" + pw + "@127.0.0.1:6379",
		"control character":             "redis://:" + pw + "@127.0.0.1:6379/\x7f",
		"percent escape":                "redis://:" + pw + "%zz@127.0.0.1:6379",
		"bad cluster address":           "redis://:" + pw + "@127.0.0.1:1,127.0.0.1",
		"bad cluster URL":               "redis://:" + pw + "@127.0.0.1:1,redis://:" + pw + "@127.0.0.1:x",
		"credentials on a bare address": "redis://127.0.0.1:1,user:" + pw + "@127.0.0.1:2",
		"too many colons later":         "redis://:" + pw + "@127.0.0.1:1,:" + pw + ":127.0.0.1:2",
		"database on a cluster":         "redis://:" + pw + "@127.0.0.1:1/2,127.0.0.1:2",
	} {
		r, err := store.NewRedis(t.Context(), store.RedisOptions{URL: url})
		if err == nil {
			r.Close()
			t.Errorf("%s: NewRedis(%q) succeeded, want an error", name, url)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		if !strings.Contains(err.Error(), "redis") {
			t.Errorf("%s: the error does not say it is about Redis: %v", name, err)
		}
	}
}

// loggedStore opens a store on url whose log lines are kept in the
// returned buffer.
func loggedStore(t *testing.T, url, namespace string) (*store.Redis, *logtest.Buffer) {
	t.Helper()
	var logs logtest.Buffer
	r, err := store.NewRedis(t.Context(), store.RedisOptions{
		URL: url, Namespace: namespace, Grace: time.Minute,
		PollInterval: 50 * time.Millisecond, CommandTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, &logs
}

func publication(n int, epoch uint64) store.Publication {
	now := time.Now()
	return store.Publication{
		RefreshedAt: now,
		Partitions:  []snapshot.Partition{{AccountID: "111111111111", Region: "eu-west-1", RefreshedAt: now, Endpoints: n}},
		Endpoints:   endpointtest.Rich(n, 1, "1"),
		Epoch:       epoch,
	}
}

// TestRedisOutOfMemoryPublishSaysSo: Redis at maxmemory refuses the
// publish; the error names the lack of memory (not an unreachable store),
// and the snapshot already served is marked stale until a publish works.
func TestRedisOutOfMemoryPublishSaysSo(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	r, _ := loggedStore(t, srv.URL(), "oom")
	if _, err := r.Publish(ctx, publication(10, 1)); err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	if v, err := r.Current(ctx); err != nil || v.Stale() {
		t.Fatalf("after a good publish: Current stale=%v, %v; want fresh", v.Stale(), err)
	}
	raw := storetest.RawClient(t, srv.URL())
	if err := raw.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatalf("CONFIG SET maxmemory: %v", err)
	}
	_, err := r.Publish(ctx, publication(2000, 1))
	if err == nil {
		t.Fatal("Publish with Redis at maxmemory succeeded")
	}
	if !errors.Is(err, store.ErrOutOfMemory) || vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Fatalf("Publish error = %v; want ErrOutOfMemory with EUNAVAILABLE", err)
	}
	if msg := vpnfacade.ErrorMessageOf(err); !strings.Contains(msg, "out of memory") || strings.Contains(msg, "cannot be reached") {
		t.Errorf("client message %q; want it to say out of memory, not unreachable", msg)
	}
	// Reads of Redis still work (the poll succeeds), but what is served
	// is older than what this process read: stale.
	time.Sleep(200 * time.Millisecond) // several polls
	if v, err := r.Current(ctx); err != nil || !v.Stale() {
		t.Fatalf("while publishes fail: Current stale=%v, %v; want stale", v.Stale(), err)
	}
	if err := raw.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatalf("CONFIG SET maxmemory 0: %v", err)
	}
	if _, err := r.Publish(ctx, publication(10, 1)); err != nil {
		t.Fatalf("Publish after memory was freed: %v", err)
	}
	if v, err := r.Current(ctx); err != nil || v.Stale() {
		t.Fatalf("after publishing again: Current stale=%v, %v; want fresh", v.Stale(), err)
	}
}

// TestRedisFlushedKeysAreNamed: FLUSHALL removes the current pointer; the
// mirror keeps serving and the log says the keys are gone (not that Redis
// cannot be read).
func TestRedisFlushedKeysAreNamed(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	r, logs := loggedStore(t, srv.URL(), "flush")
	snap, err := r.Publish(ctx, publication(10, 1))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := storetest.RawClient(t, srv.URL()).FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	eventually(t, "the log to name the flushed keys", func() bool {
		return strings.Contains(logs.String(), "redis holds no current snapshot any more (its keys were flushed")
	})
	if strings.Contains(logs.String(), "cannot be read") {
		t.Errorf("the log says Redis cannot be read after a FLUSHALL:\n%s", logs.String())
	}
	if v, err := r.Current(ctx); err != nil || v.Version != snap.Version {
		t.Fatalf("after FLUSHALL: Current = %v, %v; want the mirrored version %d", v.Snapshot, err, snap.Version)
	}
}

// TestRedisDownWithoutSnapshotSaysUnavailable: with no snapshot loaded,
// an unreachable Redis is not logged as "serving the mirrored snapshot".
func TestRedisDownWithoutSnapshotSaysUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	url := srv.URL()
	srv.Kill()
	r, logs := loggedStore(t, url, "nosnap")
	if _, err := r.Current(t.Context()); vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Fatalf("Current with Redis down = %v; want EUNAVAILABLE", err)
	}
	eventually(t, "the failed sync to be logged", func() bool { return strings.Contains(logs.String(), "cannot be read") })
	out := logs.String()
	if strings.Contains(out, "serving the mirrored snapshot") || !strings.Contains(out, "answering Unavailable") {
		t.Errorf("log with no snapshot and Redis down:\n%s\nwant it to say clients get Unavailable", out)
	}
	if strings.Contains(out, `"err"`) {
		t.Errorf("log uses the key err; want error:\n%s", out)
	}
}
