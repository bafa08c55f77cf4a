package access

import (
	"strings"
	"testing"
)

// exampleYAML is a complete access file of the documented shape, with the
// hashes of the bearer tokens "token-sync" and "token-ops" and test secrets.
func exampleYAML() string {
	return `
principals:
  - name: inventory-sync
    tokens_sha256: ["` + TokenSHA256("token-sync") + `"]
    access_keys: [{id: "AKIAEXAMPLESYNC00001", secret: "sync-secret-0123456789abcdefghij"}]
    cert_identities: ["spiffe://corp/ns/ops/sa/sync"]
    accounts: ["111111111111"]
    regions: ["*"]
  - name: ops
    tokens_sha256: ["` + TokenSHA256("token-ops") + `"]
    cert_identities: ["ops-cli"]
    accounts: ["1111111111??", "2222*"]
    regions: ["eu-*", "us-east-1"]
    rate_limit: {per_second: 2.5, burst: 4}
    admin: true
`
}

func parseExample(t *testing.T) *Config {
	t.Helper()
	cfg, err := ParseFile([]byte(exampleYAML()))
	if err != nil {
		t.Fatalf("ParseFile(example): %v", err)
	}
	return cfg
}

func TestParseFileExample(t *testing.T) {
	cfg := parseExample(t)
	var names []string
	for _, p := range cfg.Principals() {
		names = append(names, p.Name())
	}
	if got := strings.Join(names, ","); got != "inventory-sync,ops" {
		t.Fatalf("principals = %s, want inventory-sync,ops", got)
	}
	sync, _ := cfg.Principal("inventory-sync")
	ops, _ := cfg.Principal("ops")
	if sync.Admin() || !ops.Admin() {
		t.Errorf("admin: inventory-sync %v, ops %v; want false, true", sync.Admin(), ops.Admin())
	}
	if sync.limiter != nil {
		t.Errorf("inventory-sync has a rate limit; the file gives it none")
	}
	if ops.limiter == nil || ops.limiter.Burst() != 4 || float64(ops.limiter.Limit()) != 2.5 {
		t.Errorf("ops rate limit = %v, want 2.5/s burst 4", ops.limiter)
	}
	if !sync.Scope().Allows("111111111111", "ap-southeast-2") || sync.Scope().Allows("222222222222", "eu-west-1") {
		t.Errorf("inventory-sync scope wrong: %v %v", sync.Scope().Accounts(), sync.Scope().Regions())
	}
	if !ops.Scope().Allows("111111111199", "eu-west-1") || !ops.Scope().Allows("222233334444", "us-east-1") ||
		ops.Scope().Allows("333333333333", "eu-west-1") || ops.Scope().Allows("111111111111", "us-west-2") {
		t.Errorf("ops scope wrong: %v %v", ops.Scope().Accounts(), ops.Scope().Regions())
	}
}

func TestParseFileErrors(t *testing.T) {
	const secret = "do-not-echo-this-secret-0123456789"
	tok := TokenSHA256("t")
	cases := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "principals: [", []string{"access file"}},
		{"no principals", "principals: []\n", []string{"line 1", "principals", "non-empty list"}},
		{"unknown top key", "principal:\n  - name: a\n", []string{"line 1", "top level", `unknown key "principal"`, "known: principals"}},
		{"unknown principal key", "principals:\n  - name: a\n    tokens: [x]\n", []string{"line 3", `principal "a"`, `unknown key "tokens"`, "tokens_sha256"}},
		{"unknown key of unnamed principal", "principals:\n  - tokens: [x]\n", []string{"line 2", "principals[0]", `unknown key "tokens"`}},
		{"repeated key", "principals:\n  - name: a\n    accounts: ['*']\n    accounts: ['1*']\n", []string{"line 4", `principal "a"`, `key "accounts" repeats the one on line 3`}},
		{"unknown access key key", "principals:\n  - name: a\n    access_keys:\n      - {id: AKIAEXAMPLE000000001, secret: " + secret + ", region: x}\n    accounts: ['*']\n    regions: ['*']\n",
			[]string{"line 4", `principal "a": access_keys[0]`, `unknown key "region"`, "known: id, secret"}},
		{"unknown rate key", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n    rate_limit: {rps: 3}\n",
			[]string{"line 6", `principal "a": rate_limit`, `unknown key "rps"`, "per_second"}},
		{"missing name", "principals:\n  - accounts: ['*']\n", []string{"line 2", "principals[0]", "name", "required"}},
		{"bad name", "principals:\n  - name: 'a b'\n", []string{"line 2", "name", "letters, digits"}},
		{"reserved name", "principals:\n  - name: anonymous\n", []string{"reserved"}},
		{"duplicate name", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n  - name: a\n",
			[]string{"line 6", `"a" is already the name of the principal on line 2`}},
		{"bad hash", "principals:\n  - name: a\n    tokens_sha256: [abc]\n", []string{"line 3", `principal "a": tokens_sha256[0]`, "64 hex digits", "got 3 characters"}},
		{"hash not a list", "principals:\n  - name: a\n    tokens_sha256: " + tok + "\n", []string{"line 3", "tokens_sha256", "list of strings"}},
		{"duplicate hash", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n  - name: b\n    tokens_sha256: [" + tok + "]\n",
			[]string{"line 7", `principal "b": tokens_sha256[0]`, `already listed for principal "a"`}},
		{"bad key id", "principals:\n  - name: a\n    access_keys: [{id: short, secret: " + secret + "}]\n", []string{"line 3", "access_keys[0].id", "16 to 128"}},
		{"short secret", "principals:\n  - name: a\n    access_keys: [{id: AKIAEXAMPLE000000001, secret: tooshort}]\n", []string{"line 3", "access_keys[0].secret", "16 to 128"}},
		{"secret with space", "principals:\n  - name: a\n    access_keys: [{id: AKIAEXAMPLE000000001, secret: '" + secret + " x'}]\n", []string{"access_keys[0].secret"}},
		{"duplicate key id", "principals:\n  - name: a\n    access_keys: [{id: AKIAEXAMPLE000000001, secret: " + secret + "}, {id: AKIAEXAMPLE000000001, secret: " + secret + "}]\n",
			[]string{`access_keys[1].id`, `already an access key of principal "a"`}},
		{"duplicate cert identity", "principals:\n  - name: a\n    cert_identities: [x, x]\n", []string{"cert_identities[1]", "already an identity"}},
		{"no credentials", "principals:\n  - name: a\n    accounts: ['*']\n    regions: ['*']\n", []string{"line 2", `principal "a"`, "at least one credential"}},
		{"no accounts", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    regions: ['*']\n", []string{`principal "a": accounts: required`}},
		{"no regions", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n", []string{`principal "a": regions: required`}},
		{"bad account", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['12345']\n    regions: ['*']\n", []string{"line 4", "accounts[0]", `"12345" is not a 12-digit account id`}},
		{"bracket glob", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['[12]*']\n    regions: ['*']\n", []string{"accounts[0]", "glob of digits"}},
		{"bad region", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['EU West']\n", []string{"line 5", "regions[0]", "region name like eu-west-1"}},
		{"bad rate", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n    rate_limit: {per_second: -1}\n", []string{"line 6", "rate_limit.per_second", "above 0"}},
		{"bad burst", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n    rate_limit: {per_second: 1, burst: 0.5}\n", []string{"rate_limit.burst", "1 or more"}},
		{"bad admin", "principals:\n  - name: a\n    tokens_sha256: [" + tok + "]\n    accounts: ['*']\n    regions: ['*']\n    admin: maybe\n", []string{"line 6", "admin", "true or false"}},
		{"long key echo is clipped", "principals:\n  - name: a\n    " + strings.Repeat("k", 200) + ": 1\n", []string{"unknown key", "…"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFile([]byte(c.file))
			if err == nil {
				t.Fatalf("ParseFile accepted:\n%s", c.file)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "tooshort") {
				t.Errorf("error repeats a secret: %q", msg)
			}
			if strings.Contains(msg, strings.Repeat("k", 65)) {
				t.Errorf("error repeats more than 64 characters of input: %q", msg)
			}
		})
	}
}

func TestParseFileDefaultBurst(t *testing.T) {
	cfg, err := ParseFile([]byte("principals:\n  - name: a\n    tokens_sha256: [" + TokenSHA256("t") + "]\n    accounts: ['*']\n    regions: ['*']\n    rate_limit: {per_second: 2.5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.Principal("a")
	if p.limiter.Burst() != 3 {
		t.Errorf("burst = %d, want 3 (per_second rounded up)", p.limiter.Burst())
	}
}
