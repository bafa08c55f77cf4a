package store_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/store"
)

// TestTLSSettingsNeedRediss: a CA or client certificate given with a
// plain redis:// URL is an error, not a silent plain-text connection, and
// the error hides the URL's password.
func TestTLSSettingsNeedRediss(t *testing.T) {
	const pw = "s3cret-tls-pass"
	_, err := store.NewRedis(t.Context(), store.RedisOptions{URL: "redis://app:" + pw + "@127.0.0.1:6379", TLS: &tls.Config{}})
	if err == nil || !strings.Contains(err.Error(), "rediss://") {
		t.Fatalf("TLS settings with redis://: %v, want an error asking for rediss://", err)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the error shows the password: %v", err)
	}
}
