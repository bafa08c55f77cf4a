package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Endpoint is one endpoint of a snapshot, kept as its protobuf wire bytes
// (encoded once, when the snapshot is built) plus the few attributes that
// sorting, filtering and page tokens need. Responses are assembled from the
// bytes; the decoded message is built only on demand. An Endpoint is
// immutable and shared by every reader of its snapshot.
type Endpoint struct {
	id, region, account string
	hasID               bool

	vpc, transport, status          string
	hasVPC, hasTransport, hasStatus bool
	tags                            []tag

	wire []byte
	json atomic.Pointer[[]byte] // protojson of the endpoint, built on first use
	xml  atomic.Pointer[[]byte] // its EC2 Query XML <item>, built on first use
}

type tag struct{ key, value string }

// ID returns the endpoint's id (client_vpn_endpoint_id).
func (e *Endpoint) ID() string { return e.id }

// Region returns the region the endpoint was read from.
func (e *Endpoint) Region() string { return e.region }

// AccountID returns the account the endpoint was read from.
func (e *Endpoint) AccountID() string { return e.account }

// Partition returns the partition the endpoint was read from.
func (e *Endpoint) Partition() vpnfacade.PartitionKey {
	return vpnfacade.PartitionKey{AccountID: e.account, Region: e.region}
}

// Key returns the endpoint's identity across partitions,
// "account/region/id", as Diff lists it.
func (e *Endpoint) Key() string { return e.account + "/" + e.region + "/" + e.id }

// Wire returns the endpoint's protobuf encoding, deterministic for equal
// endpoints. The bytes are shared: callers must not modify them.
func (e *Endpoint) Wire() []byte { return e.wire }

// Detached returns a copy of e that shares no memory with its snapshot, for
// holders that outlive it (a change log): e's bytes are a slice of one
// buffer holding the whole snapshot's, which e would keep alive.
func (e *Endpoint) Detached() *Endpoint {
	d := &Endpoint{}
	// Its attributes point into its bytes: read them from the copy. The
	// bytes were read once already, so they are well formed.
	if err := readEndpoint(d, bytes.Clone(e.wire), &tagSlab{}); err != nil {
		panic("snapshot: an endpoint's encoding no longer reads: " + err.Error())
	}
	if j := e.json.Load(); j != nil {
		d.json.Store(j)
	}
	if x := e.xml.Load(); x != nil {
		d.xml.Store(x)
	}
	return d
}

// Message decodes the endpoint into a new message the caller owns.
func (e *Endpoint) Message() (*clientvpnv1.ClientVpnEndpoint, error) {
	m := &clientvpnv1.ClientVpnEndpoint{}
	if err := proto.Unmarshal(e.wire, m); err != nil {
		return nil, fmt.Errorf("snapshot: decode endpoint %s: %w", e.Key(), err)
	}
	return m, nil
}

// JSON returns the endpoint's protojson encoding (proto field names in
// lowerCamelCase, enums by name, absent fields omitted), built on first use
// and kept for the snapshot's lifetime. The bytes are shared: callers must
// not modify them.
func (e *Endpoint) JSON() ([]byte, error) {
	return e.encoded(&e.json, "JSON", func(m *clientvpnv1.ClientVpnEndpoint) ([]byte, error) {
		return protojson.Marshal(m)
	})
}

// EC2XML returns the endpoint's <item> element of an EC2
// DescribeClientVpnEndpoints response (ec2query.AppendEndpoint), built on
// first use and kept for the snapshot's lifetime. The bytes are shared:
// callers must not modify them.
func (e *Endpoint) EC2XML() ([]byte, error) {
	return e.encoded(&e.xml, "EC2 XML", func(m *clientvpnv1.ClientVpnEndpoint) ([]byte, error) {
		return ec2query.AppendEndpoint(nil, m), nil
	})
}

// encoded returns the encoding kept in cache, building it with encode from
// the decoded endpoint the first time. Concurrent first uses may both
// encode; one result is kept and returned to both.
func (e *Endpoint) encoded(cache *atomic.Pointer[[]byte], what string, encode func(*clientvpnv1.ClientVpnEndpoint) ([]byte, error)) ([]byte, error) {
	if b := cache.Load(); b != nil {
		return *b, nil
	}
	m, err := e.Message()
	if err != nil {
		return nil, err
	}
	b, err := encode(m)
	if err != nil {
		return nil, fmt.Errorf("snapshot: encode endpoint %s as %s: %w", e.Key(), what, err)
	}
	cache.CompareAndSwap(nil, &b)
	return *cache.Load(), nil
}

// attribute returns the one value a single-valued filter name sees on e;
// ok is false when e has none.
func (e *Endpoint) attribute(name string) (string, bool) {
	switch name {
	case FilterEndpointID:
		return e.id, e.hasID
	case FilterTransportProtocol:
		return e.transport, e.hasTransport
	case FilterVpcID:
		return e.vpc, e.hasVPC
	case FilterStatus:
		return e.status, e.hasStatus
	case FilterRegion:
		return e.region, true
	case FilterAccountID:
		return e.account, true
	}
	return "", false
}

func (e *Endpoint) sortKey() sortKey { return sortKey{id: e.id, region: e.region, account: e.account} }

// Field numbers of the attributes read from the wire, from the contract's
// descriptor so that they cannot drift from it.
var (
	endpointFields  = clientvpnv1.File_clientvpn_v1_clientvpn_proto.Messages().ByName("ClientVpnEndpoint").Fields()
	fieldID         = endpointFields.ByName("client_vpn_endpoint_id").Number()
	fieldStatus     = endpointFields.ByName("status").Number()
	fieldTransport  = endpointFields.ByName("transport_protocol").Number()
	fieldTransportX = endpointFields.ByName("transport_protocol_unrecognized").Number()
	fieldTags       = endpointFields.ByName("tags").Number()
	fieldVPC        = endpointFields.ByName("vpc_id").Number()
	fieldRegion     = endpointFields.ByName("region").Number()
	fieldAccount    = endpointFields.ByName("account_id").Number()
)

var (
	tagFields        = clientvpnv1.File_clientvpn_v1_clientvpn_proto.Messages().ByName("Tag").Fields()
	fieldTagKey      = tagFields.ByName("key").Number()
	fieldTagValue    = tagFields.ByName("value").Number()
	statusFields     = clientvpnv1.File_clientvpn_v1_clientvpn_proto.Messages().ByName("ClientVpnEndpointStatus").Fields()
	fieldStatusCode  = statusFields.ByName("code").Number()
	fieldStatusCodeX = statusFields.ByName("code_unrecognized").Number()
)

var errCorrupt = errors.New("snapshot: corrupt endpoint encoding")

// wireString returns b as a string without copying it. The snapshot never
// modifies an endpoint's encoding, so the string stays valid and unchanged
// for as long as the encoding is reachable; it keeps the encoding's buffer
// alive, which is why Detached reads its copy again.
func wireString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// readEndpoint fills e's attributes from its wire bytes without decoding the
// whole message: only the fields filters, sorting and tokens need. The
// attributes' strings point into wire (see wireString): reading copies
// nothing but the tags' list.
func readEndpoint(e *Endpoint, wire []byte, tags *tagSlab) error {
	e.wire = wire
	scratch := tags.scratch[:0]
	var (
		transport   protoreflect.EnumNumber
		transportX  []byte
		hasTranspX  bool
		statusCode  protoreflect.EnumNumber
		statusX     []byte
		hasStatusX  bool
		statusFound bool
	)
	b := wire
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errCorrupt
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == fieldID || num == fieldVPC || num == fieldRegion || num == fieldAccount || num == fieldTransportX || num == fieldStatus || num == fieldTags):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			switch num {
			case fieldID:
				e.id, e.hasID = wireString(v), true
			case fieldVPC:
				e.vpc, e.hasVPC = wireString(v), true
			case fieldRegion:
				e.region = wireString(v)
			case fieldAccount:
				e.account = wireString(v)
			case fieldTransportX:
				transportX, hasTranspX = v, true
			case fieldStatus:
				statusFound = true
				if err := readPair(v, fieldStatusCode, fieldStatusCodeX, func(first bool, varint uint64, bytes []byte) {
					if first {
						statusCode = protoreflect.EnumNumber(int32(varint))
					} else {
						statusX, hasStatusX = bytes, true
					}
				}); err != nil {
					return err
				}
			case fieldTags:
				var t tag
				if err := readPair(v, fieldTagKey, fieldTagValue, func(first bool, _ uint64, bytes []byte) {
					if first {
						t.key = wireString(bytes)
					} else {
						t.value = wireString(bytes)
					}
				}); err != nil {
					return err
				}
				scratch = append(scratch, t)
			}
		case typ == protowire.VarintType && num == fieldTransport:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			transport = protoreflect.EnumNumber(int32(v))
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
		}
	}
	tags.scratch = scratch
	e.tags = tags.take(scratch)
	var x *string
	if hasTranspX {
		s := wireString(transportX)
		x = &s
	}
	e.transport, e.hasTransport = vpnfacade.EnumString(clientvpnv1.TransportProtocol(transport), x)
	if statusFound {
		x = nil
		if hasStatusX {
			s := wireString(statusX)
			x = &s
		}
		e.status, e.hasStatus = vpnfacade.EnumString(clientvpnv1.ClientVpnEndpointStatusCode(statusCode), x)
	}
	return nil
}

// tagSlab hands out the tag lists of a run of endpoints from shared blocks:
// one allocation for many endpoints instead of a few for each.
type tagSlab struct {
	size    int // tags per block; 0: exactly each endpoint's (one endpoint read alone)
	block   []tag
	scratch []tag // the endpoint being read
}

// tagBlock is the largest block, for reading a long run of endpoints.
const tagBlock = 1024

// take returns a copy of tags carved out of the current block.
func (s *tagSlab) take(tags []tag) []tag {
	if len(tags) == 0 {
		return nil
	}
	if len(tags) > cap(s.block)-len(s.block) {
		s.block = make([]tag, 0, max(s.size, len(tags)))
	}
	from := len(s.block)
	s.block = append(s.block, tags...)
	return s.block[from:len(s.block):len(s.block)]
}

// readPair reads a small message of which two fields matter (Tag,
// ClientVpnEndpointStatus), calling f for each occurrence of either: with
// first true for the first (a string or a varint) and false for the second
// (a string).
func readPair(b []byte, first, second protowire.Number, f func(first bool, varint uint64, bytes []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errCorrupt
		}
		b = b[n:]
		switch {
		case (num == first || num == second) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			f(num == first, 0, v)
		case num == first && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			f(true, v, nil)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
		}
	}
	return nil
}
