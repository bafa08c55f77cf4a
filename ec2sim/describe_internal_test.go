package ec2sim

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestEditedTokenIsRefused changes the position a well-formed token records,
// as a caller editing it by hand would: the checksum refuses it.
func TestEditedTokenIsRefused(t *testing.T) {
	key := PartitionKey{AccountID: DefaultAccount, Region: "eu-west-1"}
	token := encodeToken(key, "binding", "cvpn-endpoint-0000000000000000a")
	if after, ok := decodeToken(token, key, "binding"); !ok || after != "cvpn-endpoint-0000000000000000a" {
		t.Fatalf("decodeToken(encodeToken(...)) = %q, %v", after, ok)
	}
	b, _ := base64.StdEncoding.DecodeString(token)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	fields["after"] = "cvpn-endpoint-0000000000000000b"
	b, _ = json.Marshal(fields)
	if after, ok := decodeToken(base64.StdEncoding.EncodeToString(b), key, "binding"); ok {
		t.Errorf("edited token accepted, continuing after %q", after)
	}
}
