package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of masters started by a test, the hash slots
// split evenly between them, without replicas.
type Cluster struct {
	// Nodes are the cluster's masters, in slot order.
	Nodes []*Server
}

// StartCluster starts n redis-server processes in cluster mode on free
// loopback ports, assigns each a share of the slots, joins them and waits
// until the cluster reports itself healthy. Every node is killed when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: a cluster needs at least one node, got %d", n)
	}
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, start(t, true, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	clients := make([]*redis.Client, n)
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		defer clients[i].Close()
	}
	for i, cl := range clients {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("redistest: assign slots %d-%d to %s: %v", lo, hi, c.Nodes[i].Addr(), err)
		}
		if i > 0 {
			if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[i].Port())).Err(); err != nil {
				t.Fatalf("redistest: join %s to the cluster: %v", c.Nodes[i].Addr(), err)
			}
		}
	}
	for i, cl := range clients {
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r\n", n)) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: node %s did not see a healthy cluster of %d within %s: %v\n%s", c.Nodes[i].Addr(), n, readyTimeout, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// URL returns the nodes' addresses as one comma-separated URL,
// "redis://a:p1,b:p2,…", which selects cluster mode in clients that take
// one (store.RedisOptions).
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return "redis://" + strings.Join(addrs, ",")
}
