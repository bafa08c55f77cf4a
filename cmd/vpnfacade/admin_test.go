package main_test

// The status service (issue 17) with two real replicas on one Redis and
// the emulator counting DescribeClientVpnEndpoints calls.

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	adminv1 "github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1"
	"github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1/adminv1connect"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// describeCalls is how many DescribeClientVpnEndpoints requests s answered.
func describeCalls(s *sim) int64 {
	return s.Stats().ByAction[ec2query.ActionDescribeClientVpnEndpoints]
}

func adminClients(url string) map[string]adminv1connect.AdminServiceClient {
	return map[string]adminv1connect.AdminServiceClient{
		"connect":  adminv1connect.NewAdminServiceClient(h2cClient(), url),
		"grpc":     adminv1connect.NewAdminServiceClient(h2cClient(), url, connect.WithGRPC()),
		"grpc-web": adminv1connect.NewAdminServiceClient(http.DefaultClient, url, connect.WithGRPCWeb()),
	}
}

func TestAdminRefreshNowAcrossReplicas(t *testing.T) {
	t.Parallel()
	s := startSim(t, 40, ec2sim.Options{})
	redisURL := redistest.Start(t).URL()
	const minInterval = 5 * time.Second
	args := []string{"--refresh-interval", "1h", "--lease-ttl", "2s", "--refresh-now-min-interval", minInterval.String()}
	fs := []*facade{startFacadeProcess(t, s, redisURL, nil, args...), startFacadeProcess(t, s, redisURL, nil, args...)}
	for _, f := range fs {
		waitServing(t, f.url)
	}
	// Find the leader: one replica says it leads, and both name it.
	var leader, follower int
	var statuses [2]*adminv1.GetStatusResponse
	waitUntil(t, 20*time.Second, "one leader that both replicas name", func() bool {
		for i, f := range fs {
			res, err := adminClients(f.url)["connect"].GetStatus(t.Context(), &adminv1.GetStatusRequest{})
			if err != nil {
				t.Fatalf("GetStatus on replica %d: %v", i, err)
			}
			statuses[i] = res
		}
		roles := [2]adminv1.Role{statuses[0].GetRole(), statuses[1].GetRole()}
		switch roles {
		case [2]adminv1.Role{adminv1.Role_ROLE_LEADER, adminv1.Role_ROLE_FOLLOWER}:
			leader, follower = 0, 1
		case [2]adminv1.Role{adminv1.Role_ROLE_FOLLOWER, adminv1.Role_ROLE_LEADER}:
			leader, follower = 1, 0
		default:
			return false
		}
		return statuses[0].GetLease().GetHolder() == statuses[leader].GetReplica() &&
			statuses[1].GetLease().GetHolder() == statuses[leader].GetReplica()
	})
	for i, st := range statuses {
		if n := len(st.GetPartitions()); n != len(e2eRegions) {
			t.Errorf("replica %d: %d partitions, want %d: %v", i, n, len(e2eRegions), st.GetPartitions())
		}
		for _, p := range st.GetPartitions() {
			if p.GetAccountId() != e2eAccount || p.GetEndpoints() == 0 || p.GetLastSuccess() == nil || p.GetLastError() != "" || p.GetStale() {
				t.Errorf("replica %d: partition %v, want a fresh partition of %s with endpoints", i, p, e2eAccount)
			}
		}
	}

	// RefreshNow on the follower: the leader reads EC2 once, and the
	// answer carries the new version, which both replicas then serve.
	before := statuses[leader].GetSnapshot().GetVersion()
	s.Mutate(3)
	calls := describeCalls(s)
	res, err := adminClients(fs[follower].url)["grpc"].RefreshNow(t.Context(), &adminv1.RefreshNowRequest{})
	if err != nil {
		t.Fatalf("RefreshNow on the follower: %v", err)
	}
	if got := describeCalls(s) - calls; got != pagesPerRefresh {
		t.Errorf("RefreshNow made %d DescribeClientVpnEndpoints calls, want %d (one refresh)", got, pagesPerRefresh)
	}
	if !res.GetChanged() || res.GetVersion() <= before || res.GetLeader() != statuses[leader].GetReplica() {
		t.Errorf("RefreshNow = %v; want a new version above %d, refreshed by %s", res, before, statuses[leader].GetReplica())
	}

	// Within the minimum interval, on the other replica too: refused with
	// a retry hint, and EC2 is not called.
	calls = describeCalls(s)
	_, err = adminClients(fs[leader].url)["grpc-web"].RefreshNow(t.Context(), &adminv1.RefreshNowRequest{})
	retry := checkRateLimited(t, err, minInterval)
	if got := describeCalls(s) - calls; got != 0 {
		t.Errorf("a rate-limited RefreshNow made %d EC2 calls", got)
	}
	sameOnBoth(t, fs, res.GetVersion())

	// Ten concurrent calls on both replicas, once the interval is over:
	// one refresh. The emulator answers slowly, so that every call comes
	// while the refresh runs.
	time.Sleep(retry) // the server's own hint
	if err := s.SetLatency(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Mutate(2)
	calls = describeCalls(s)
	var wg sync.WaitGroup
	results := make([]*adminv1.RefreshNowResponse, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			c := adminClients(fs[i%2].url)[[]string{"connect", "grpc", "grpc-web"}[i%3]]
			results[i], errs[i] = c.RefreshNow(t.Context(), &adminv1.RefreshNowRequest{})
		})
	}
	wg.Wait()
	for i := range 10 {
		if errs[i] != nil {
			t.Fatalf("concurrent RefreshNow %d: %v", i, errs[i])
		}
		if results[i].GetVersion() != results[0].GetVersion() {
			t.Errorf("concurrent RefreshNow %d answered version %d, call 0 version %d", i, results[i].GetVersion(), results[0].GetVersion())
		}
	}
	if got := describeCalls(s) - calls; got != pagesPerRefresh {
		t.Errorf("ten concurrent RefreshNow calls made %d DescribeClientVpnEndpoints calls, want %d (one refresh)", got, pagesPerRefresh)
	}
	if results[0].GetVersion() <= res.GetVersion() {
		t.Errorf("the shared refresh answered version %d, want above %d (the emulator changed)", results[0].GetVersion(), res.GetVersion())
	}
	sameOnBoth(t, fs, results[0].GetVersion())
}

// sameOnBoth waits until GetStatus on every replica shows version and the
// same lease holder and epoch.
func sameOnBoth(t *testing.T, fs []*facade, version uint64) {
	t.Helper()
	var got []*adminv1.GetStatusResponse
	waitUntil(t, 10*time.Second, "every replica at the same version and leader", func() bool {
		got = got[:0]
		for _, f := range fs {
			res, err := adminClients(f.url)["grpc"].GetStatus(t.Context(), &adminv1.GetStatusRequest{})
			if err != nil {
				t.Fatalf("GetStatus: %v", err)
			}
			got = append(got, res)
		}
		for _, res := range got {
			if res.GetSnapshot().GetVersion() != version ||
				res.GetLease().GetHolder() != got[0].GetLease().GetHolder() || res.GetLease().GetHolder() == "" ||
				res.GetLease().GetEpoch() != got[0].GetLease().GetEpoch() || res.GetLease().GetEpoch() == 0 ||
				res.GetRefresher().GetReplica() != res.GetLease().GetHolder() {
				return false
			}
		}
		return true
	})
}

// checkRateLimited checks that err is RESOURCE_EXHAUSTED with a retry hint
// within interval, and returns the hint.
func checkRateLimited(t *testing.T, err error, interval time.Duration) time.Duration {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("RefreshNow within the minimum interval: %v, want ResourceExhausted", err)
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if info, ok := v.(*errdetails.RetryInfo); ok {
				retry := info.GetRetryDelay().AsDuration()
				if retry <= 0 || retry > interval {
					t.Fatalf("retry hint %v, want within (0, %v]", retry, interval)
				}
				return retry
			}
		}
	}
	t.Fatalf("ResourceExhausted without a RetryInfo detail: %v", ce)
	return 0
}
