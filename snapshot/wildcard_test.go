package snapshot

import (
	"strings"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "ü", true},
		{"b?ro", "büro", true},
		{"b*o", "büro", true},
		{"prod*", "production", true},
		{"prod*", "Prod", false},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{`a\?`, "a?", true},
		{`a\`, `a\`, true},
		{"*a*b*c*", "xxaxxbxxc", true},
		{"*a*b*c*", "xxaxxcxxb", false},
		{"a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, tc := range cases {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestWildcardMatchAllocatesNothing(t *testing.T) {
	pattern := "*" + strings.Repeat("ä*", 100) + "z"
	value := strings.Repeat("äb", 128)
	if n := testing.AllocsPerRun(100, func() { wildcardMatch(pattern, value) }); n != 0 {
		t.Errorf("wildcardMatch allocates %v times per call, want 0", n)
	}
}

// BenchmarkWildcardWorstCase is the costliest match the limits allow: a
// 256-character pattern of stars against a 256-character value it does not
// match.
func BenchmarkWildcardWorstCase(b *testing.B) {
	pattern := "*" + strings.Repeat("a*", 127) + "z"
	value := strings.Repeat("a", 256)
	for b.Loop() {
		wildcardMatch(pattern, value)
	}
}
