package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	ok := []struct{ header, token string }{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER  a-b.c_d~e+f/g==", "a-b.c_d~e+f/g=="},
	}
	for _, c := range ok {
		got, err := ParseBearer(c.header)
		if err != nil || got != c.token {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q", c.header, got, err, c.token)
		}
	}
	bad := []struct {
		header string
		reason Reason
	}{
		{"", ReasonMalformed},
		{"Bearer", ReasonMalformed},
		{"Bearer ", ReasonMissing},
		{"Basic dXNlcjpwYXNz", ReasonMalformed},
		{"Bearer a b", ReasonMalformed},
		{"Bearer a=b", ReasonMalformed},
		{"Bearer =", ReasonMalformed},
		{"Bearer tok\x00en", ReasonMalformed},
		{"Bearer " + strings.Repeat("a", MaxTokenLength+1), ReasonMalformed},
		{"AWS4-HMAC-SHA256 Credential=x", ReasonMalformed},
	}
	for _, c := range bad {
		_, err := ParseBearer(c.header)
		if ReasonOf(err) != c.reason {
			t.Errorf("ParseBearer(%q): %v, want reason %s", c.header, err, c.reason)
			continue
		}
		if tok, ok := strings.CutPrefix(c.header, "Bearer "); ok && len(tok) > 2 && strings.Contains(err.Error(), tok) {
			t.Errorf("ParseBearer(%q): error repeats the token: %v", c.header, err)
		}
	}
}

func TestBearer(t *testing.T) {
	a := newAuthenticator(t, exampleYAML(), Options{})
	for token, want := range map[string]string{"token-sync": "inventory-sync", "token-ops": "ops"} {
		p, err := a.Bearer(token)
		if err != nil || p.Name() != want {
			t.Errorf("Bearer(%q) = %s, %v; want %s", token, principalName(p), err, want)
		}
	}
	for _, token := range []string{"token-syn", "token-sync ", "TOKEN-SYNC", TokenSHA256("token-sync")} {
		p, err := a.Bearer(token)
		if ReasonOf(err) != ReasonUnknown || p != nil {
			t.Errorf("Bearer(%q) = %s, %v; want ReasonUnknown", token, principalName(p), err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
	if _, err := a.Bearer(""); ReasonOf(err) != ReasonMissing {
		t.Errorf("Bearer(\"\"): %v, want ReasonMissing", err)
	}
}

// TestHTTPBearer authenticates real HTTP requests through a loopback server.
func TestHTTPBearer(t *testing.T) {
	a := newAuthenticator(t, exampleYAML(), Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.HTTP(r)
		if err != nil {
			http.Error(w, string(ReasonOf(err)), http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(p.Name()))
	}))
	defer srv.Close()
	cases := []struct {
		headers []string
		want    string
	}{
		{nil, "401 missing_credentials"},
		{[]string{"Bearer token-ops"}, "200 ops"},
		{[]string{"Bearer token-sync"}, "200 inventory-sync"},
		{[]string{"Bearer nope"}, "401 unknown_credentials"},
		{[]string{"Basic b3BzOg=="}, "401 malformed_credentials"},
		{[]string{"Bearer token-ops", "Bearer token-sync"}, "401 malformed_credentials"},
	}
	for _, c := range cases {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		for _, h := range c.headers {
			req.Header.Add("Authorization", h)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		if got := strings.TrimSpace(res.Status[:3] + " " + body); got != c.want {
			t.Errorf("Authorization %q: got %q, want %q", c.headers, got, c.want)
		}
	}
}
