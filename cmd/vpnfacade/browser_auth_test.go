package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// TestBrowserToken runs the page against a service with an access file
// (issue 14): without a token the page asks for one; given the token of a
// principal limited to one account, it shows exactly that account's
// endpoints, as the API answers that principal, and its live stream is
// accepted too; the token is kept for the tab (a reload does not ask
// again); a token the service refuses makes the page ask again.
func TestBrowserToken(t *testing.T) {
	t.Parallel()
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 80, Seed: 11, Regions: e2eRegions, Accounts: []string{e2eAccount, otherAccount}})
	if err != nil {
		t.Fatal(err)
	}
	s := startSimWith(t, data).sim
	token := issued(t, "new-token")
	accessFile := filepath.Join(t.TempDir(), "access.yaml")
	writeAccessFile(t, accessFile, fmt.Sprintf(`principals:
  - name: one-account
    tokens_sha256: [%s]
    accounts: ["%s"]
    regions: ["*"]
`, token["tokens_sha256"], e2eAccount))
	f := startFacade(t, s, "", "--assume-roles", "arn:aws:iam::"+otherAccount+":role/reader", "--access-file", accessFile)
	waitServing(t, f.url)
	bearer := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), f.url, connect.WithInterceptors(bearerInterceptor(token["token"])))

	b := newBrowser(t)
	tab := b.tab(t)
	b.open(t, tab, f.url+"/")
	if !visible(t, tab, "#auth") {
		t.Fatalf("without a token the page does not ask for one; it shows: %s", visibleText(t, tab, "body"))
	}
	if text := visibleText(t, tab, "#error"); !regexp.MustCompile(`^Unauthenticated: `).MatchString(text) {
		t.Errorf("the error line reads %q, want the Unauthenticated code", text)
	}
	if n := len(rowKeys(t, tab)); n != 0 {
		t.Errorf("without a token the page shows %d rows", n)
	}
	b.screenshot(t, tab, "token-prompt")

	before := loads(t, tab)
	typeIn(t, tab, "#auth-token", token["token"])
	click(t, tab, "#auth-submit")
	b.waitLoadedAfter(t, tab, before)
	if visible(t, tab, "#auth") {
		t.Errorf("the prompt stays after a good token")
	}
	want := apiPage(t, bearer, nil, 100, "")
	if len(want.keys) == 0 {
		t.Fatal("the API shows the one-account principal nothing")
	}
	checkOneAccount := func() {
		t.Helper()
		got := rowKeys(t, tab)
		if !slices.Equal(got, want.keys) {
			t.Errorf("with the one-account token the page shows %d rows, want the API's %d for that principal:\n got %v\nwant %v", len(got), len(want.keys), head(got), head(want.keys))
		}
		for _, k := range got {
			if account := regexp.MustCompile(`^[0-9]+`).FindString(k); account != e2eAccount {
				t.Errorf("row %s is of account %s, outside the principal's scope", k, account)
			}
		}
	}
	checkOneAccount()
	waitText(t, tab, "#count", regexp.MustCompile(fmt.Sprintf(`^%d matches`, len(want.keys))))
	// The watch stream carries the token as well: it goes live.
	waitAttr(t, tab, "live", "live")

	// The tab keeps the token: a reload asks nothing.
	b.open(t, tab, f.url+"/")
	if visible(t, tab, "#auth") {
		t.Errorf("after a reload the page asks for the token again")
	}
	checkOneAccount()

	// A token the service refuses: the page asks again, saying so.
	eval[string](t, tab, `sessionStorage.setItem("vpnfacade.token", "vpft_refused"), "set"`)
	b.open(t, tab, f.url+"/")
	if !visible(t, tab, "#auth") {
		t.Fatalf("with a refused token the page does not ask for another")
	}
	if text := visibleText(t, tab, "#auth-why"); !regexp.MustCompile(`refused the token`).MatchString(text) {
		t.Errorf("the prompt reads %q, want it to say the token was refused", text)
	}
}

// bearerInterceptor adds "Authorization: Bearer token" to every call.
func bearerInterceptor(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}
