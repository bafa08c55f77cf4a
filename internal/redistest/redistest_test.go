package redistest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

func TestServerDrills(t *testing.T) {
	s := redistest.Start(t)
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("URL %q does not parse: %v", s.URL(), err)
	}
	opts.MaxRetries = -1
	opts.ReadTimeout = 200 * time.Millisecond
	opts.DialTimeout = 200 * time.Millisecond
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := t.Context()

	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on a fresh server: %v", err)
	}
	s.Pause()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET answered while the server was paused")
	}
	s.Resume()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after resume = %q, %v; want the data kept", got, err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	port := s.Port()
	s.Restart()
	if s.Port() != port {
		t.Errorf("Restart moved the server from port %d to %d", port, s.Port())
	}
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Errorf("GET after restart = %v; want an empty server (redis.Nil)", err)
	}
}

func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cl.Nodes[0].Addr()}})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 30 {
		if err := c.Set(ctx, fmt.Sprint("key-", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key-%d: %v", i, err)
		}
	}
	// Keys spread over every node: the slots were split between them.
	for _, n := range cl.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		size, err := nc.DBSize(ctx).Result()
		nc.Close()
		if err != nil || size == 0 {
			t.Errorf("node %s holds %d keys (%v); want some", n.Addr(), size, err)
		}
	}
}
