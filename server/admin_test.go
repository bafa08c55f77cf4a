package server_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/admin"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	adminv1 "github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1"
	"github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1/adminv1connect"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// twoRegions is a refresher.Source of one endpoint in each of two regions
// of one account, counting its reads.
type twoRegions struct{ reads atomic.Int64 }

func (s *twoRegions) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		_ = yield("111111111111", "eu-west-1") && yield("111111111111", "us-east-1")
	}
}

func (s *twoRegions) Read(_ context.Context, account, region string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	s.reads.Add(1)
	return []*clientvpnv1.ClientVpnEndpoint{{
		ClientVpnEndpointId: proto.String("cvpn-endpoint-0123456789abcdef0"), AccountId: account, Region: region,
	}}, nil
}

// adminEnv serves the admin service of a solo process (memory store, its
// refresher running) with the access file accessYAML, or none when empty.
func adminEnv(t *testing.T, accessYAML string) (url string, src *twoRegions) {
	t.Helper()
	st := store.NewMemory()
	src = &twoRegions{}
	ref, err := refresher.New(src, st, refresher.Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ref.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	coord, err := admin.NewLocal(admin.Options{Refresher: ref, Replica: "test/1", MinInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Admin: coord}
	if accessYAML != "" {
		path := filepath.Join(t.TempDir(), "access.yaml")
		if err := os.WriteFile(path, []byte(accessYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		if opts.Access, err = access.New(access.Options{Path: path}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() < 2 || func() bool { _, err := st.Current(t.Context()); return err != nil }() {
		if time.Now().After(deadline) {
			t.Fatal("no first refresh within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return startServer(t, server.NewHandler(opts)), src
}

// bearer returns admin clients on every protocol sending token (none when
// empty).
func adminClientsWith(url, token string) map[string]adminv1connect.AdminServiceClient {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", "Bearer "+token)
				return next(ctx, req)
			}
		})))
	}
	return map[string]adminv1connect.AdminServiceClient{
		"connect":  adminv1connect.NewAdminServiceClient(h2cClient(), url, opts...),
		"grpc":     adminv1connect.NewAdminServiceClient(h2cClient(), url, append(opts, connect.WithGRPC())...),
		"grpc-web": adminv1connect.NewAdminServiceClient(http.DefaultClient, url, append(opts, connect.WithGRPCWeb())...),
	}
}

func codeOf(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

func TestAdminServiceNeedsAnAdminPrincipal(t *testing.T) {
	t.Parallel()
	const ops, reader, euOps = "ops-token-0123456789", "reader-token-0123456789", "eu-ops-token-0123456789"
	url, src := adminEnv(t, `principals:
  - name: ops
    tokens_sha256: ["`+access.TokenSHA256(ops)+`"]
    accounts: ["*"]
    regions: ["*"]
    admin: true
  - name: reader
    tokens_sha256: ["`+access.TokenSHA256(reader)+`"]
    accounts: ["*"]
    regions: ["*"]
  - name: eu-ops
    tokens_sha256: ["`+access.TokenSHA256(euOps)+`"]
    accounts: ["*"]
    regions: ["eu-*"]
    admin: true
`)
	for proto, c := range adminClientsWith(url, "") {
		if _, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{}); codeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: GetStatus without credentials: %v, want Unauthenticated", proto, err)
		}
	}
	reads := src.reads.Load()
	for proto, c := range adminClientsWith(url, reader) {
		if _, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{}); codeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: GetStatus by a principal without admin: %v, want PermissionDenied", proto, err)
		}
		if _, err := c.RefreshNow(t.Context(), &adminv1.RefreshNowRequest{}); codeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: RefreshNow by a principal without admin: %v, want PermissionDenied", proto, err)
		}
	}
	for proto, c := range adminClientsWith(url, "not-a-known-token-0123") {
		if _, err := c.RefreshNow(t.Context(), &adminv1.RefreshNowRequest{}); codeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: RefreshNow with an unknown token: %v, want Unauthenticated", proto, err)
		}
	}
	if got := src.reads.Load(); got != reads {
		t.Errorf("denied calls read upstream %d times", got-reads)
	}

	for proto, c := range adminClientsWith(url, ops) {
		res, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{})
		if err != nil || len(res.GetPartitions()) != 2 || res.GetRole() != adminv1.Role_ROLE_SOLO || res.GetLease() != nil || res.GetSnapshot().GetEndpoints() != 2 {
			t.Errorf("%s: GetStatus by ops = %v, %v; want 2 partitions, solo, no lease", proto, res, err)
		}
	}
	for proto, c := range adminClientsWith(url, euOps) {
		res, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{})
		if err != nil || len(res.GetPartitions()) != 1 || res.GetPartitions()[0].GetRegion() != "eu-west-1" || res.GetSnapshot().GetEndpoints() != 1 {
			t.Errorf("%s: GetStatus by eu-ops = %v, %v; want only eu-west-1 and its 1 endpoint", proto, res, err)
		}
	}
	res, err := adminClientsWith(url, ops)["grpc"].RefreshNow(t.Context(), &adminv1.RefreshNowRequest{})
	if err != nil || res.GetVersion() == 0 || src.reads.Load() != reads+2 {
		t.Fatalf("RefreshNow by ops = %v, %v, %d reads; want a version and one refresh (2 reads)", res, err, src.reads.Load()-reads)
	}
	_, err = adminClientsWith(url, ops)["connect"].RefreshNow(t.Context(), &adminv1.RefreshNowRequest{})
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || ce.Meta().Get("Retry-After") == "" {
		t.Errorf("second RefreshNow within the hour: %v, want ResourceExhausted with Retry-After", err)
	}
}

func TestAdminServiceIsOpenWithoutAccessControl(t *testing.T) {
	t.Parallel()
	url, src := adminEnv(t, "")
	reads := src.reads.Load()
	for proto, c := range adminClientsWith(url, "") {
		res, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{})
		if err != nil || len(res.GetPartitions()) != 2 || res.GetReplica() != "test/1" {
			t.Errorf("%s: GetStatus = %v, %v; want 2 partitions from replica test/1", proto, res, err)
		}
	}
	if _, err := adminClientsWith(url, "")["grpc-web"].RefreshNow(t.Context(), &adminv1.RefreshNowRequest{}); err != nil {
		t.Errorf("RefreshNow: %v", err)
	}
	if got := src.reads.Load() - reads; got != 2 {
		t.Errorf("RefreshNow read %d partitions, want 2", got)
	}
}

func TestAdminRefreshNowWithoutALeaderIsUnavailable(t *testing.T) {
	t.Parallel()
	st := storetest.Redis(t, redistest.Start(t).URL(), "admin")
	ref, err := refresher.New(&twoRegions{}, st, refresher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	coord, err := admin.NewRedis(admin.RedisOptions{
		Options: admin.Options{Refresher: ref, Replica: "test/2"},
		Client:  st.Client(), Key: st.Key, LeaseKey: st.Key("lease"), EpochKey: st.EpochKey(), Lease: notLeading{},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t, server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Admin: coord}))
	for proto, c := range adminClientsWith(url, "") {
		if _, err := c.RefreshNow(t.Context(), &adminv1.RefreshNowRequest{}); codeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "no replica leads") {
			t.Errorf("%s: RefreshNow with no lease holder: %v, want Unavailable saying no replica leads", proto, err)
		}
		res, err := c.GetStatus(t.Context(), &adminv1.GetStatusRequest{})
		if err != nil || res.GetRole() != adminv1.Role_ROLE_FOLLOWER || res.GetLease() == nil || res.GetLease().GetHolder() != "" || res.GetSnapshot() != nil {
			t.Errorf("%s: GetStatus with no lease holder and no snapshot = %v, %v; want a follower, an empty lease holder, no snapshot", proto, res, err)
		}
	}
}

// notLeading is a replica that does not hold the lease.
type notLeading struct{}

func (notLeading) Leader() bool { return false }
