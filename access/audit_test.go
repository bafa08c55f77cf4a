package access

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	var logs bytes.Buffer
	a := newAuthenticator(t, exampleYAML(), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	logs.Reset() // drop "access file loaded"

	// An unknown token, then a wrong SigV4 signature, then a rate limit.
	const token = "vpft_secret-token-never-logged"
	_, errToken := a.Bearer(token)
	a.Audit(t.Context(), nil, ProtocolGRPC, "/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints", errToken)

	req := signedRequest(t, "http://127.0.0.1/", syncKeyID, "wrong-secret-0123456789abcdefghij", "eu-west-1", time.Now(), describeBody)
	signature := req.Header.Get("Authorization")[strings.Index(req.Header.Get("Authorization"), "Signature=")+len("Signature="):]
	_, errSig := a.SigV4(req)
	a.Audit(t.Context(), nil, ProtocolEC2, "DescribeClientVpnEndpoints", errSig)

	ops, _ := a.Config().Principal("ops")
	a.Audit(t.Context(), ops, ProtocolConnect, "/clientvpn.v1.ClientVpnService/GetClientVpnEndpoint", denied(ReasonRateLimited, "rate limit"))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines for 3 denials:\n%s", len(lines), logs.String())
	}
	want := []map[string]string{
		{"principal": "anonymous", "protocol": "grpc", "procedure": "/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints", "reason": "unknown_credentials"},
		{"principal": "anonymous", "protocol": "ec2", "procedure": "DescribeClientVpnEndpoints", "reason": "signature_mismatch"},
		{"principal": "ops", "protocol": "connect", "procedure": "/clientvpn.v1.ClientVpnService/GetClientVpnEndpoint", "reason": "rate_limited"},
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if rec["level"] != "WARN" || rec["msg"] != "access denied" {
			t.Errorf("line %d: level %v msg %v, want WARN \"access denied\"", i, rec["level"], rec["msg"])
		}
		for k, v := range want[i] {
			if rec[k] != v {
				t.Errorf("line %d: %s = %v, want %s", i, k, rec[k], v)
			}
		}
	}
	for _, secret := range []string{token, TokenSHA256(token), signature, syncSecret, "wrong-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the audit log contains a credential (%.12s…)", secret)
		}
	}
}
