package access

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"
)

// Config is a parsed and validated access file: the principals and the
// indexes that find one from a credential. A Config is immutable; the
// Authenticator swaps whole Configs on reload.
type Config struct {
	principals []*Principal
	tokens     []tokenEntry          // scanned in full on every bearer lookup
	keys       map[string]accessKey  // by access key id
	certs      map[string]*Principal // by certificate identity
	limits     map[string]rateLimit  // by principal name; only limited ones
	digest     [sha256.Size]byte     // of the file's bytes
}

type tokenEntry struct {
	hash      [sha256.Size]byte
	principal *Principal
}

type accessKey struct {
	secret    string
	principal *Principal
}

type rateLimit struct {
	perSecond float64
	burst     int
}

// Principals returns the principals in file order.
func (c *Config) Principals() []*Principal { return slices.Clone(c.principals) }

// Principal returns the principal named name.
func (c *Config) Principal(name string) (*Principal, bool) {
	for _, p := range c.principals {
		if p.name == name {
			return p, true
		}
	}
	return nil, false
}

// keys of the access file, per level, for the unknown-key check and its
// message.
var (
	topKeys       = []string{"principals"}
	principalKeys = []string{"name", "tokens_sha256", "access_keys", "cert_identities", "accounts", "regions", "rate_limit", "admin"}
	accessKeyKeys = []string{"id", "secret"}
	rateLimitKeys = []string{"per_second", "burst"}
)

var (
	namePattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}$`)
	accessKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)
	accountPattern     = regexp.MustCompile(`^[0-9]{12}$`)
	accountGlob        = regexp.MustCompile(`^[0-9*?]{1,64}$`)
	regionPattern      = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	regionGlob         = regexp.MustCompile(`^[a-z0-9*?-]{1,64}$`)
)

// ParseFile parses and validates an access file:
//
//	principals:
//	  - name: inventory-sync                         # unique; letters, digits, . _ : @ / + -
//	    tokens_sha256: ["<hex SHA-256 of a bearer token>"]
//	    access_keys: [{id: "AKIA…", secret: "…"}]    # SigV4 keys for the EC2-compatible endpoint
//	    cert_identities: ["spiffe://corp/ns/ops/sa/sync"]  # client certificate URI SAN, else subject CN
//	    accounts: ["111111111111"]                   # globs with * and ? allowed
//	    regions: ["*"]
//	    rate_limit: {per_second: 50, burst: 100}     # optional; burst defaults to per_second rounded up
//	    admin: false                                 # optional; may use the admin service
//
// Unknown keys are errors, as are duplicated names and credentials, a
// principal without credentials or without accounts or regions, and a file
// without principals (so that a file caught half-written never locks
// everyone out on reload). Every error names the line, the principal and
// the key; none repeats a secret.
func ParseFile(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("access file: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("access file: empty; it must list principals")
	}
	root := doc.Content[0]
	if err := checkKeys(root, "top level", topKeys); err != nil {
		return nil, err
	}
	list := valueOf(root, "principals")
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := root.Line
		if list != nil {
			line = list.Line
		}
		return nil, fmt.Errorf("access file: line %d: principals: must be a non-empty list", line)
	}
	c := &Config{
		keys:   map[string]accessKey{},
		certs:  map[string]*Principal{},
		limits: map[string]rateLimit{},
		digest: sha256.Sum256(data),
	}
	names := map[string]int{}           // name → line
	tokenLines := map[[32]byte]string{} // hash → principal
	for i, item := range list.Content {
		if err := c.addPrincipal(i, item, names, tokenLines); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// addPrincipal validates one entry of principals and indexes it.
func (c *Config) addPrincipal(i int, n *yaml.Node, names map[string]int, tokenOwners map[[32]byte]string) error {
	where := fmt.Sprintf("principals[%d]", i)
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("access file: line %d: %s: must be a mapping with keys %s", n.Line, where, strings.Join(principalKeys, ", "))
	}
	if name := valueOf(n, "name"); name != nil && name.Kind == yaml.ScalarNode && namePattern.MatchString(name.Value) {
		where = fmt.Sprintf("principal %q", name.Value)
	}
	if err := checkKeys(n, where, principalKeys); err != nil {
		return err
	}
	fail := func(line int, key, format string, args ...any) error {
		return fmt.Errorf("access file: line %d: %s: %s: %s", line, where, key, fmt.Sprintf(format, args...))
	}

	nameNode := valueOf(n, "name")
	if nameNode == nil {
		return fail(n.Line, "name", "required")
	}
	if nameNode.Kind != yaml.ScalarNode || !namePattern.MatchString(nameNode.Value) {
		return fail(nameNode.Line, "name", "must be 1 to 64 letters, digits and . _ : @ / + - starting with a letter or digit")
	}
	name := nameNode.Value
	where = fmt.Sprintf("principals[%d]", i)
	if name == AnonymousName {
		return fail(nameNode.Line, "name", "%q is reserved for callers when access control is off", AnonymousName)
	}
	if first, dup := names[name]; dup {
		return fail(nameNode.Line, "name", "%q is already the name of the principal on line %d", name, first)
	}
	names[name] = nameNode.Line
	where = fmt.Sprintf("principal %q", name)

	p := &Principal{name: name}
	credentials := 0

	// tokens_sha256
	hashes, err := stringList(valueOf(n, "tokens_sha256"))
	if err != nil {
		return fail(err.line, "tokens_sha256", "%s", err.msg)
	}
	for j, h := range hashes {
		sum, ok := parseSHA256(h.Value)
		if !ok {
			return fail(h.Line, fmt.Sprintf("tokens_sha256[%d]", j), "must be 64 hex digits, the SHA-256 of a bearer token (got %d characters)", len(h.Value))
		}
		if owner, dup := tokenOwners[sum]; dup {
			return fail(h.Line, fmt.Sprintf("tokens_sha256[%d]", j), "this token hash is already listed for principal %q", owner)
		}
		tokenOwners[sum] = name
		c.tokens = append(c.tokens, tokenEntry{hash: sum, principal: p})
		credentials++
	}

	// access_keys
	if keys := valueOf(n, "access_keys"); keys != nil {
		if keys.Kind != yaml.SequenceNode {
			return fail(keys.Line, "access_keys", "must be a list of {id, secret}")
		}
		for j, k := range keys.Content {
			key := fmt.Sprintf("access_keys[%d]", j)
			if k.Kind != yaml.MappingNode {
				return fail(k.Line, key, "must be a mapping with keys id, secret")
			}
			if err := checkKeys(k, where+": "+key, accessKeyKeys); err != nil {
				return err
			}
			id, secret := valueOf(k, "id"), valueOf(k, "secret")
			if id == nil || id.Kind != yaml.ScalarNode || !accessKeyIDPattern.MatchString(id.Value) {
				return fail(k.Line, key+".id", "must be 16 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE")
			}
			if secret == nil || secret.Kind != yaml.ScalarNode || !validSecret(secret.Value) {
				// The secret is never repeated, not even its length.
				return fail(k.Line, key+".secret", "must be 16 to 128 printable ASCII characters without spaces")
			}
			if prev, dup := c.keys[id.Value]; dup {
				return fail(id.Line, key+".id", "%q is already an access key of principal %q", id.Value, prev.principal.name)
			}
			c.keys[id.Value] = accessKey{secret: secret.Value, principal: p}
			credentials++
		}
	}

	// cert_identities
	idents, err := stringList(valueOf(n, "cert_identities"))
	if err != nil {
		return fail(err.line, "cert_identities", "%s", err.msg)
	}
	for j, id := range idents {
		key := fmt.Sprintf("cert_identities[%d]", j)
		if id.Value == "" || len(id.Value) > 256 || strings.ContainsFunc(id.Value, isControl) {
			return fail(id.Line, key, "must be 1 to 256 characters without control characters: a URI SAN such as spiffe://corp/ns/ops/sa/sync, or a subject CN")
		}
		if prev, dup := c.certs[id.Value]; dup {
			return fail(id.Line, key, "%s is already an identity of principal %q", clip(id.Value), prev.name)
		}
		c.certs[id.Value] = p
		credentials++
	}
	if credentials == 0 {
		return fail(n.Line, "tokens_sha256, access_keys, cert_identities", "at least one credential is required")
	}

	// accounts and regions
	accounts, err := stringList(valueOf(n, "accounts"))
	if err != nil {
		return fail(err.line, "accounts", "%s", err.msg)
	}
	if len(accounts) == 0 {
		return fail(n.Line, "accounts", `required: the accounts this principal may read (["*"] for every account)`)
	}
	for j, a := range accounts {
		if !validPattern(a.Value, accountPattern, accountGlob) {
			return fail(a.Line, fmt.Sprintf("accounts[%d]", j), "%s is not a 12-digit account id or a glob of digits, * and ?", clip(a.Value))
		}
	}
	regions, err := stringList(valueOf(n, "regions"))
	if err != nil {
		return fail(err.line, "regions", "%s", err.msg)
	}
	if len(regions) == 0 {
		return fail(n.Line, "regions", `required: the regions this principal may read (["*"] for every region)`)
	}
	for j, r := range regions {
		if !validPattern(r.Value, regionPattern, regionGlob) {
			return fail(r.Line, fmt.Sprintf("regions[%d]", j), "%s is not a region name like eu-west-1 or a glob of lowercase letters, digits, -, * and ?", clip(r.Value))
		}
	}
	p.scope = NewScope(values(accounts), values(regions))

	// rate_limit
	if rl := valueOf(n, "rate_limit"); rl != nil {
		if rl.Kind != yaml.MappingNode {
			return fail(rl.Line, "rate_limit", "must be a mapping with keys per_second, burst")
		}
		if err := checkKeys(rl, where+": rate_limit", rateLimitKeys); err != nil {
			return err
		}
		var lim rateLimit
		ps := valueOf(rl, "per_second")
		if ps == nil || ps.Kind != yaml.ScalarNode || ps.Decode(&lim.perSecond) != nil ||
			math.IsNaN(lim.perSecond) || math.IsInf(lim.perSecond, 0) || lim.perSecond <= 0 {
			return fail(rl.Line, "rate_limit.per_second", "required: a number of requests per second above 0")
		}
		if b := valueOf(rl, "burst"); b != nil {
			if b.Kind != yaml.ScalarNode || b.Decode(&lim.burst) != nil || lim.burst < 1 {
				return fail(b.Line, "rate_limit.burst", "must be a whole number of requests, 1 or more")
			}
		} else {
			lim.burst = int(math.Ceil(lim.perSecond))
		}
		c.limits[name] = lim
		p.limiter = rate.NewLimiter(rate.Limit(lim.perSecond), lim.burst)
	}

	// admin
	if a := valueOf(n, "admin"); a != nil {
		if a.Kind != yaml.ScalarNode || a.Decode(&p.admin) != nil {
			return fail(a.Line, "admin", "must be true or false")
		}
	}

	c.principals = append(c.principals, p)
	return nil
}

// inherit keeps the rate limiters of prev's principals whose limit did not
// change, so that a reload does not hand every principal a fresh burst.
func (c *Config) inherit(prev *Config) {
	if prev == nil {
		return
	}
	for _, p := range c.principals {
		lim, ok := c.limits[p.name]
		if !ok {
			continue
		}
		if prevLim, ok := prev.limits[p.name]; ok && prevLim == lim {
			if old, ok := prev.Principal(p.name); ok && old.limiter != nil {
				p.limiter = old.limiter
			}
		}
	}
}

// checkKeys reports the first key of mapping n that is not in known.
func checkKeys(n *yaml.Node, where string, known []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("access file: line %d: %s: must be a mapping with keys %s", n.Line, where, strings.Join(known, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(known, k.Value) {
			return fmt.Errorf("access file: line %d: %s: unknown key %s (known: %s)", k.Line, where, clip(k.Value), strings.Join(known, ", "))
		}
		for j := 0; j < i; j += 2 {
			if n.Content[j].Value == k.Value {
				return fmt.Errorf("access file: line %d: %s: key %q repeats the one on line %d", k.Line, where, k.Value, n.Content[j].Line)
			}
		}
	}
	return nil
}

// valueOf returns the value of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return nil
			}
			return v
		}
	}
	return nil
}

type listError struct {
	line int
	msg  string
}

// stringList returns the scalar items of a sequence node (nil: none).
func stringList(n *yaml.Node) ([]*yaml.Node, *listError) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &listError{n.Line, "must be a list of strings"}
	}
	for j, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			return nil, &listError{item.Line, fmt.Sprintf("item %d must be a string", j)}
		}
	}
	return n.Content, nil
}

func values(nodes []*yaml.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Value
	}
	return out
}

// validPattern reports whether s is an exact name matching exact, or a glob
// (containing * or ?) matching glob.
func validPattern(s string, exact, glob *regexp.Regexp) bool {
	if strings.ContainsAny(s, "*?") {
		return glob.MatchString(s)
	}
	return exact.MatchString(s)
}

func parseSHA256(s string) ([sha256.Size]byte, bool) {
	var sum [sha256.Size]byte
	if len(s) != hex.EncodedLen(sha256.Size) {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, false
	}
	return sum, true
}

func validSecret(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// sameFile reports whether data is the file c was parsed from.
func (c *Config) sameFile(data []byte) bool {
	sum := sha256.Sum256(data)
	return bytes.Equal(sum[:], c.digest[:])
}
