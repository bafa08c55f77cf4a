package snapshot

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/vpnfacade/vpnfacade"
)

// Page tokens are keyset positions: the sort key of the last endpoint a page
// returned, so that a listing continues after it in whatever snapshot is
// current when the next page is asked for. A token is bound to the ids and
// filters of the query that produced it and carries a checksum, so a token
// edited by hand or used with another query is refused. The checksum is
// tamper-evidence, not a secret: a token grants nothing a caller could not
// get by paging.
//
// Layout, then base64url without padding:
//
//	1 byte  format version (1)
//	8 bytes query binding (queryBinding)
//	3 × (uvarint length, bytes)  endpoint id, region, account id
//	8 bytes checksum: SHA-256 of everything before it, truncated

const tokenFormat = 1

// maxTokenLen bounds what decodeToken reads; real tokens are ~100 bytes.
const maxTokenLen = 1024

// queryBinding fingerprints the ids and filters of a query, independently of
// their order.
func queryBinding(ids []string, filters []Filter) [8]byte {
	var b strings.Builder
	sortedIDs := slices.Clone(ids)
	slices.Sort(sortedIDs)
	sortedIDs = slices.Compact(sortedIDs)
	for _, id := range sortedIDs {
		writeField(&b, "i", id)
	}
	parts := make([]string, 0, len(filters))
	for _, f := range filters {
		var fb strings.Builder
		writeField(&fb, "f", f.Name)
		values := slices.Clone(f.Values)
		slices.Sort(values)
		for _, v := range slices.Compact(values) {
			writeField(&fb, "v", v)
		}
		parts = append(parts, fb.String())
	}
	slices.Sort(parts)
	for _, p := range parts {
		b.WriteString(p)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return [8]byte(sum[:8])
}

// writeField writes a length-prefixed field so that no two different
// queries serialise alike.
func writeField(b *strings.Builder, tag, s string) {
	var n [binary.MaxVarintLen64]byte
	b.WriteString(tag)
	b.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	b.WriteString(s)
}

func encodeToken(binding [8]byte, after sortKey) string {
	buf := make([]byte, 0, 9+len(after.id)+len(after.region)+len(after.account)+3+8)
	buf = append(buf, tokenFormat)
	buf = append(buf, binding[:]...)
	for _, s := range []string{after.id, after.region, after.account} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	sum := sha256.Sum256(buf)
	buf = append(buf, sum[:8]...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func errBadToken(reason string) error {
	return vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldNextToken,
		"invalid: %s; pass the token of the previous page unchanged, or none to start over", reason)
}

// decodeToken returns the position a token records, checking that it was
// issued for a query with the same binding.
func decodeToken(token string, binding [8]byte) (sortKey, error) {
	if len(token) > maxTokenLen {
		return sortKey{}, errBadToken("too long")
	}
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(buf) < 1+8+3+8 {
		return sortKey{}, errBadToken("not a token this service issued")
	}
	body, sum := buf[:len(buf)-8], buf[len(buf)-8:]
	want := sha256.Sum256(body)
	if string(want[:8]) != string(sum) || body[0] != tokenFormat {
		return sortKey{}, errBadToken("not a token this service issued")
	}
	if [8]byte(body[1:9]) != binding {
		return sortKey{}, errBadToken("it was issued for different ids or filters")
	}
	rest := body[9:]
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return sortKey{}, errBadToken("not a token this service issued")
		}
		fields[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return sortKey{}, errBadToken("not a token this service issued")
	}
	return sortKey{id: fields[0], region: fields[1], account: fields[2]}, nil
}
