package snapshot

import (
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade"
)

// Limits on one query, checked before any work so that a request's cost is
// bounded by what it names. Transports report a breach in their own
// vocabulary; each limit is at least what EC2 itself accepts.
const (
	// MaxIDs is the most endpoint ids one query may name.
	MaxIDs = 1000
	// MaxFilters is the most filters one query may have.
	MaxFilters = 50
	// MaxValuesPerFilter is the most values one filter may have.
	MaxValuesPerFilter = 200
	// MaxValueLength is the longest id, filter name, value or pattern, in
	// characters (AWS's limit on a tag value).
	MaxValueLength = 256
)

// checkLength refuses a value longer than MaxValueLength characters.
func checkLength(field, s string) error {
	if len(s) > MaxValueLength && utf8.RuneCountInString(s) > MaxValueLength {
		return vpnfacade.Errorf(vpnfacade.EINVALID, field,
			"a value is %d characters long, more than the limit of %d: %s",
			utf8.RuneCountInString(s), MaxValueLength, vpnfacade.Quote(s))
	}
	return nil
}
