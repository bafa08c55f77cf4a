package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// TestAddressRateChargesBodiesAndRefills drives the limiter on a clock of
// its own: a call costs one token plus one per 16 KiB of body, a body of
// unknown length is charged after the call, the bucket refills at the rate
// up to two seconds' worth, and each address has its own.
func TestAddressRateChargesBodiesAndRefills(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	served := 0
	a := newAddressRate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 64<<10))
		served++
	}), 5, connect.NewErrorWriter()) // burst 10
	a.clock = func() time.Time { return now }
	call := func(from string, body int, knownLength bool) int {
		r := httptest.NewRequest(http.MethodPost, clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, bytes.NewReader(make([]byte, body)))
		r.Header.Set("Content-Type", "application/proto")
		r.RemoteAddr = from
		if !knownLength {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		// No tarpit: the refused call's client has already left.
		ctx, cancel := context.WithCancel(r.Context())
		cancel()
		a.ServeHTTP(w, r.WithContext(ctx))
		return w.Code
	}
	if code := call("192.0.2.1:1000", 48<<10, true); code != http.StatusOK { // 1 + 3 tokens
		t.Fatalf("first call: %d", code)
	}
	if code := call("192.0.2.1:1001", 64<<10, false); code != http.StatusOK { // 1, then 4 after
		t.Fatalf("unknown length: %d", code)
	}
	// 10 - 4 - 5 = 1 token left: a call of 16 KiB (2 tokens) is refused,
	// one without a body passes, and then nothing does.
	if code := call("192.0.2.1:1002", 16<<10, true); code != http.StatusTooManyRequests {
		t.Errorf("2 tokens with 1 left: %d, want 429 (resource_exhausted)", code)
	}
	if code := call("192.0.2.1:1003", 0, true); code != http.StatusOK {
		t.Errorf("1 token with 1 left: %d", code)
	}
	if code := call("192.0.2.1:1004", 0, true); code != http.StatusTooManyRequests {
		t.Errorf("1 token with none left: %d", code)
	}
	if code := call("[2001:db8::1]:1", 0, true); code != http.StatusOK {
		t.Errorf("another address: %d", code)
	}
	now = now.Add(200 * time.Millisecond) // one token at 5 per second
	if code := call("192.0.2.1:1005", 0, true); code != http.StatusOK {
		t.Errorf("after a refill of one token: %d", code)
	}
	now = now.Add(time.Hour) // full again, and no more than the burst
	for i := range 10 {
		if code := call("192.0.2.1:1006", 0, true); code != http.StatusOK {
			t.Fatalf("call %d of a full burst of 10: %d", i+1, code)
		}
	}
	if code := call("192.0.2.1:1007", 0, true); code != http.StatusTooManyRequests {
		t.Errorf("call 11 of a burst of 10: %d", code)
	}
	// Another host of the same IPv6 /64 shares its bucket.
	for range 10 {
		call("[2001:db8::2]:1", 0, true)
	}
	if code := call("[2001:db8::3]:1", 0, true); code != http.StatusTooManyRequests {
		t.Errorf("a third host of an IPv6 /64 past the burst: %d", code)
	}
	// Gets are not limited.
	r := httptest.NewRequest(http.MethodPost, clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure, nil)
	r.RemoteAddr = "192.0.2.1:1008"
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("Get: %d", w.Code)
	}
	if want := 2 + 1 + 1 + 1 + 10 + 10 + 1; served != want {
		t.Errorf("served %d calls, want %d", served, want)
	}
}
