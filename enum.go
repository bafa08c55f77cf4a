package vpnfacade

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// The proto enums of clientvpn.v1 name each value PREFIX_AWS_SPELLING, where
// PREFIX is the zero value's name without UNSPECIFIED and AWS_SPELLING is AWS's
// value upper-cased with '-' turned into '_' (pending-associate →
// CLIENT_VPN_ENDPOINT_STATUS_CODE_PENDING_ASSOCIATE). The two functions below
// rely on that rule, which the contract tests check against the SDK.

// EnumString returns AWS's spelling of an enum field: the known value v, or
// unrecognized (the verbatim value the contract does not know) when v is the
// zero value. ok is false when AWS sent nothing.
func EnumString(v protoreflect.Enum, unrecognized *string) (s string, ok bool) {
	if v.Number() == 0 {
		if unrecognized == nil {
			return "", false
		}
		return *unrecognized, true
	}
	ed := v.Descriptor()
	if table, ok := contractSpellings[ed.FullName()]; ok {
		if n := int(v.Number()); n > 0 && n < len(table) && table[n] != "" {
			return table[n], true
		}
		return "", false
	}
	return spell(ed, v.Number())
}

// contractSpellings holds AWS's spelling of every value of the contract's
// enums, by enum name and value number. It is built once at start-up and
// only read afterwards: the XML encoder and the query engine call EnumString
// for every endpoint they touch.
var contractSpellings = func() map[protoreflect.FullName][]string {
	out := map[protoreflect.FullName][]string{}
	enums := clientvpnv1.File_clientvpn_v1_clientvpn_proto.Enums()
	for i := range enums.Len() {
		ed := enums.Get(i)
		values := ed.Values()
		var table []string
		for j := range values.Len() {
			n := values.Get(j).Number()
			for int(n) >= len(table) {
				table = append(table, "")
			}
			if n > 0 {
				table[n], _ = spell(ed, n)
			}
		}
		out[ed.FullName()] = table
	}
	return out
}()

// spell derives AWS's spelling of value n of ed from its proto name.
func spell(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) (string, bool) {
	vd := ed.Values().ByNumber(n)
	if vd == nil {
		// A number newer than this binary's descriptor: no spelling known.
		return "", false
	}
	name := strings.TrimPrefix(string(vd.Name()), enumPrefix(ed))
	return strings.ReplaceAll(strings.ToLower(name), "_", "-"), true
}

// ParseEnum turns AWS's spelling s into the enum value E, or, when the
// contract does not know s, into the zero value and a pointer to s so the
// caller can keep it in the field's _unrecognized sibling.
func ParseEnum[E interface {
	~int32
	protoreflect.Enum
}](s string) (E, *string) {
	var zero E
	ed := zero.Descriptor()
	name := enumPrefix(ed) + strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
	// Only lower-case, '-'-separated spellings map to a value: "TCP" or
	// "pending_associate" are not AWS's and stay unrecognized verbatim.
	if s != "" && s == strings.ToLower(s) && !strings.Contains(s, "_") {
		if vd := ed.Values().ByName(protoreflect.Name(name)); vd != nil && vd.Number() != 0 {
			return E(vd.Number()), nil
		}
	}
	return zero, &s
}

// enumPrefix returns the common prefix of the value names of ed, taken from
// its zero value, e.g. "TRANSPORT_PROTOCOL_".
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	return strings.TrimSuffix(string(ed.Values().ByNumber(0).Name()), "UNSPECIFIED")
}
