package access

import (
	"path"
	"strings"
)

// Scope is what a principal may read: the accounts and regions of the
// endpoints it sees. Patterns are exact names or globs with EC2's wildcards,
// '*' (any run of characters) and '?' (any one character).
//
// A Scope is immutable and safe for concurrent use; Allows does not
// allocate, so it can run once per endpoint of a query.
type Scope struct {
	accounts patternSet
	regions  patternSet
}

// NewScope returns the scope of the given account and region patterns. It
// panics on a pattern path.Match rejects; ParseFile validates patterns
// before it builds scopes, so this only guards programming errors.
func NewScope(accounts, regions []string) *Scope {
	return &Scope{accounts: newPatternSet(accounts), regions: newPatternSet(regions)}
}

// AllScope returns the scope that allows every account and region: the
// anonymous caller's when access control is off.
func AllScope() *Scope {
	return NewScope([]string{"*"}, []string{"*"})
}

// Allows reports whether an endpoint of account in region is in the scope.
func (s *Scope) Allows(account, region string) bool {
	return s.accounts.match(account) && s.regions.match(region)
}

// AllowsAccount reports whether some region of account is in the scope.
func (s *Scope) AllowsAccount(account string) bool { return s.accounts.match(account) }

// AllowsRegion reports whether region is in the scope for some account.
func (s *Scope) AllowsRegion(region string) bool { return s.regions.match(region) }

// All reports whether the scope allows every account and region, so a
// caller can skip filtering altogether.
func (s *Scope) All() bool { return s.accounts.all && s.regions.all }

// Accounts returns the account patterns, as written.
func (s *Scope) Accounts() []string { return append([]string(nil), s.accounts.source...) }

// Regions returns the region patterns, as written.
func (s *Scope) Regions() []string { return append([]string(nil), s.regions.source...) }

// patternSet is a precompiled list of patterns: exact names are compared
// directly, globs go through path.Match (whose only metacharacters in a
// validated pattern are '*' and '?').
type patternSet struct {
	source   []string
	all      bool     // a bare "*"
	exact    []string // no wildcard
	prefixes []string // "eu-*": the part before the one trailing *
	globs    []string
}

func newPatternSet(patterns []string) patternSet {
	ps := patternSet{source: append([]string(nil), patterns...)}
	for _, p := range patterns {
		switch {
		case p == "*":
			ps.all = true
		case strings.IndexAny(p, "*?") == len(p)-1 && p[len(p)-1] == '*':
			ps.prefixes = append(ps.prefixes, p[:len(p)-1])
		case strings.ContainsAny(p, "*?"):
			if _, err := path.Match(p, ""); err != nil {
				panic("access: invalid pattern " + clip(p) + ": " + err.Error())
			}
			ps.globs = append(ps.globs, p)
		default:
			ps.exact = append(ps.exact, p)
		}
	}
	return ps
}

func (ps *patternSet) match(s string) bool {
	if ps.all {
		return true
	}
	for _, e := range ps.exact {
		if e == s {
			return true
		}
	}
	for _, p := range ps.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	for _, g := range ps.globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
