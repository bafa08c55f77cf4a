package snapshot

import (
	"testing"
)

// benchKey is a position as page tokens record it.
func benchKey() sortKey {
	return sortKey{id: "cvpn-endpoint-0123456789abcdef0", region: "eu-west-1", account: "111111111111"}
}

// benchFilters are the two filters of the List benchmarks.
func benchFilters() []Filter {
	return []Filter{
		{Name: "tag:env", Values: []string{"prod"}},
		{Name: "transport-protocol", Values: []string{"udp", "tcp"}},
	}
}

// BenchmarkQueryBinding fingerprints a query's ids and filters, as every
// List call with a token (and every page with a next one) does.
func BenchmarkQueryBinding(b *testing.B) {
	filters := benchFilters()
	for b.Loop() {
		queryBinding(nil, filters)
	}
}

// BenchmarkTokenEncode issues a next_token.
func BenchmarkTokenEncode(b *testing.B) {
	binding := queryBinding(nil, benchFilters())
	for b.Loop() {
		if encodeToken(binding, benchKey()) == "" {
			b.Fatal("empty token")
		}
	}
}

// BenchmarkTokenDecode checks and reads a next_token.
func BenchmarkTokenDecode(b *testing.B) {
	binding := queryBinding(nil, benchFilters())
	token := encodeToken(binding, benchKey())
	for b.Loop() {
		if _, err := decodeToken(token, binding); err != nil {
			b.Fatal(err)
		}
	}
}
