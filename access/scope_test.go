package access

import "testing"

func TestScopeAllows(t *testing.T) {
	s := NewScope([]string{"111111111111", "2222*", "33333333333?"}, []string{"eu-*", "us-east-1", "ap-?????east-1"})
	cases := []struct {
		account, region string
		want            bool
	}{
		{"111111111111", "eu-west-1", true},
		{"111111111111", "us-east-1", true},
		{"111111111111", "us-east-2", false},
		{"111111111112", "eu-west-1", false},
		{"222233334444", "eu-central-2", true},
		{"333333333339", "ap-southeast-1", true},
		{"33333333333", "eu-west-1", false}, // ? needs one character
		{"333333333339", "ap-east-1", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got := s.Allows(c.account, c.region); got != c.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", c.account, c.region, got, c.want)
		}
	}
	if s.All() {
		t.Error("All() = true for a limited scope")
	}
	if !AllScope().All() || !AllScope().Allows("999999999999", "xx-any-9") {
		t.Error("AllScope does not allow everything")
	}
	if !s.AllowsAccount("222200000000") || s.AllowsAccount("999999999999") || !s.AllowsRegion("eu-north-1") || s.AllowsRegion("us-west-2") {
		t.Error("AllowsAccount / AllowsRegion disagree with the patterns")
	}
}

// TestScopeAllowsDoesNotAllocate: Allows runs once per endpoint of a query.
func TestScopeAllowsDoesNotAllocate(t *testing.T) {
	s := NewScope([]string{"111111111111", "2222*"}, []string{"eu-*", "us-east-1"})
	allocs := testing.AllocsPerRun(1000, func() {
		_ = s.Allows("222233334444", "eu-west-1")
		_ = s.Allows("999999999999", "us-east-1")
	})
	if allocs != 0 {
		t.Errorf("Allows allocates %v times per call pair, want 0", allocs)
	}
}

func BenchmarkScopeAllows(b *testing.B) {
	s := NewScope([]string{"111111111111", "2222*", "33333333333?"}, []string{"eu-*", "us-east-1"})
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Allows("333333333339", "eu-west-1")
	}
}
