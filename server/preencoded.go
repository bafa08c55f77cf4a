package server

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Responses carry endpoints the snapshot encoded once, at publish time, and
// the codecs write those bytes straight into connect-go's output buffer:
// a List costs one output buffer, sized once, and one copy of each
// endpoint's bytes.
//
// A handler cannot hand the codec anything but the response message, so it
// parks the page's endpoints in a pendingEndpoints registry and leaves in the
// message's unknown fields only a reference to them: one varint record of a
// private field number. The codec that writes the message takes the
// endpoints back and appends them in its own encoding:
//
//   - Binary (gRPC, gRPC-Web, Connect proto): a repeated or singular message
//     field on the wire is a run of (tag, length, bytes) records in any
//     order, so the other fields' encoding followed by one such record per
//     endpoint decodes, in any client, as that field.
//   - JSON (Connect JSON): the endpoints' protojson, built once per snapshot
//     on first use, spliced under the field's JSON name before the
//     protojson of the other fields.
//
// The codec, not the handler, picks the encoding, so the two cannot
// disagree.

// refField is the private field number of the reference record: the largest
// field number protobuf allows, far from any the contract uses.
const refField protowire.Number = protowire.MaxValidNumber

// wholeJSONField is the private field number of a record holding a whole
// message's protojson: a watch change, encoded once for all the watchers
// of one selection (see prepareWatchMessage).
const wholeJSONField protowire.Number = protowire.MaxValidNumber - 1

// Field numbers of the endpoints in the responses, from the contract.
var (
	listEndpointsField = fieldNumber(&clientvpnv1.ListClientVpnEndpointsResponse{}, "client_vpn_endpoints")
	getEndpointField   = fieldNumber(&clientvpnv1.GetClientVpnEndpointResponse{}, "client_vpn_endpoint")
	watchAddedField    = fieldNumber(&clientvpnv1.WatchClientVpnEndpointsResponse{}, "added")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// jsonName returns the JSON name of field n of message m.
func jsonName(m proto.Message, n protowire.Number) string {
	return m.ProtoReflect().Descriptor().Fields().ByNumber(n).JSONName()
}

// endpointsField returns the field number of the endpoints in m and
// whether it is repeated; ok is false for a message that carries none.
func endpointsField(m proto.Message) (field protowire.Number, repeated, ok bool) {
	switch m.(type) {
	case *clientvpnv1.ListClientVpnEndpointsResponse:
		return listEndpointsField, true, true
	case *clientvpnv1.GetClientVpnEndpointResponse:
		return getEndpointField, false, true
	case *clientvpnv1.WatchClientVpnEndpointsResponse:
		return watchAddedField, true, true // an initial state's batch
	}
	return 0, false, false
}

// pendingEndpoints holds the endpoints of the responses handlers returned
// and codecs have not written yet, by reference number.
type pendingEndpoints struct {
	mu   sync.Mutex
	next uint64
	byID map[uint64]pendingEntry
}

type pendingEntry struct {
	endpoints []*snapshot.Endpoint
	cleanup   runtime.Cleanup
}

func newPendingEndpoints() *pendingEndpoints {
	return &pendingEndpoints{byID: map[uint64]pendingEntry{}}
}

// attachEndpoints makes endpoints the content of m's endpoints field when a
// codec of p writes m. Should m never be written (an interceptor dropping
// it), the entry goes when m is collected.
func attachEndpoints[T any, M interface {
	*T
	proto.Message
}](p *pendingEndpoints, m M, endpoints []*snapshot.Endpoint) {
	p.mu.Lock()
	p.next++
	id := p.next
	p.mu.Unlock()
	cleanup := runtime.AddCleanup((*T)(m), p.drop, id)
	p.mu.Lock()
	p.byID[id] = pendingEntry{endpoints: endpoints, cleanup: cleanup}
	p.mu.Unlock()
	ref := protowire.AppendTag(make([]byte, 0, 16), refField, protowire.VarintType)
	m.ProtoReflect().SetUnknown(protowire.AppendVarint(ref, id))
}

func (p *pendingEndpoints) drop(id uint64) {
	p.mu.Lock()
	delete(p.byID, id)
	p.mu.Unlock()
}

// take returns the endpoints m refers to, which only one write of m gets;
// ok is false when m refers to none. Marshalling m's other fields takes
// clearing the reference meanwhile (see without).
func (p *pendingEndpoints) take(m proto.Message) (endpoints []*snapshot.Endpoint, ok bool, err error) {
	unknown := m.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return nil, false, nil
	}
	num, typ, n := protowire.ConsumeTag(unknown)
	if n < 0 || num != refField || typ != protowire.VarintType {
		return nil, false, nil
	}
	id, m2 := protowire.ConsumeVarint(unknown[n:])
	if m2 < 0 || n+m2 != len(unknown) {
		return nil, false, errors.New("server: malformed reference to pre-encoded endpoints")
	}
	if p == nil {
		return nil, false, errors.New("server: a response refers to pre-encoded endpoints but the codec has no registry")
	}
	p.mu.Lock()
	e, found := p.byID[id]
	delete(p.byID, id)
	p.mu.Unlock()
	if !found {
		return nil, false, errors.New("server: the pre-encoded endpoints of a response were already written")
	}
	e.cleanup.Stop()
	return e.endpoints, true, nil
}

// without clears m's unknown fields (the reference to its endpoints) and
// returns the function that puts them back: a second write of m then finds
// the reference already taken and fails, instead of sending no endpoints.
func without(m proto.Message) (restore func()) {
	r := m.ProtoReflect()
	unknown := r.GetUnknown()
	r.SetUnknown(nil)
	return func() { r.SetUnknown(unknown) }
}

// protoCodec is connect-go's binary codec, appending pre-encoded endpoints.
type protoCodec struct{ pending *pendingEndpoints }

// Name implements connect.Codec.
func (protoCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (c protoCodec) Marshal(v any) ([]byte, error) { return c.marshalAppend(nil, v, false) }

// MarshalAppend implements connect-go's buffer-reusing codec extension.
func (c protoCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	return c.marshalAppend(dst, v, false)
}

// MarshalStable implements connect-go's stable codec extension.
func (c protoCodec) MarshalStable(v any) ([]byte, error) { return c.marshalAppend(nil, v, true) }

func (c protoCodec) marshalAppend(dst []byte, v any, deterministic bool) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("server: cannot marshal %T: not a protobuf message", v)
	}
	opts := proto.MarshalOptions{Deterministic: deterministic}
	endpoints, ok, err := c.pending.take(m)
	if err != nil {
		return nil, err
	}
	if !ok {
		if isWholeJSON(m) {
			return nil, errors.New("server: a binary response carries a message encoded as JSON")
		}
		// A watch change encoded once in binary (see prepareWatchMessage)
		// is its unknown fields: they are copied out as they are.
		return opts.MarshalAppend(dst, m)
	}
	defer without(m)()
	field, _, _ := endpointsField(m)
	size := opts.Size(m)
	for _, e := range endpoints {
		size += protowire.SizeTag(field) + protowire.SizeBytes(len(e.Wire()))
	}
	dst = slices.Grow(dst, size)
	if dst, err = opts.MarshalAppend(dst, m); err != nil {
		return nil, err
	}
	for _, e := range endpoints {
		dst = protowire.AppendTag(dst, field, protowire.BytesType)
		dst = protowire.AppendBytes(dst, e.Wire())
	}
	return dst, nil
}

// IsBinary implements connect-go's stable codec extension.
func (protoCodec) IsBinary() bool { return true }

// Unmarshal implements connect.Codec.
func (protoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("server: cannot unmarshal into %T: not a protobuf message", v)
	}
	return proto.Unmarshal(data, m)
}

// jsonCodec is connect-go's JSON codec, splicing pre-encoded endpoints.
type jsonCodec struct{ pending *pendingEndpoints }

// Name implements connect.Codec.
func (jsonCodec) Name() string { return "json" }

// Marshal implements connect.Codec.
func (c jsonCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// MarshalStable implements connect-go's stable codec extension; JSON with
// pre-encoded endpoints is as stable as protojson's.
func (c jsonCodec) MarshalStable(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// IsBinary implements connect-go's stable codec extension.
func (jsonCodec) IsBinary() bool { return false }

// MarshalAppend implements connect-go's buffer-reusing codec extension.
func (c jsonCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("server: cannot marshal %T: not a protobuf message", v)
	}
	endpoints, ok, err := c.pending.take(m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return appendJSON(dst, m)
	}
	defer without(m)()
	field, repeated, _ := endpointsField(m)
	name := jsonName(m, field)
	// The other fields' protojson (the snapshot info, a page token) takes
	// about twice their binary size.
	size := len(name) + 8 + 2*proto.Size(m) + 64
	for _, e := range endpoints {
		j, err := e.JSON() // built once per snapshot, then shared
		if err != nil {
			return nil, err
		}
		size += len(j) + 1
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"`...)
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	if repeated {
		dst = append(dst, '[')
	}
	for i, e := range endpoints {
		if i > 0 {
			dst = append(dst, ',')
		}
		j, _ := e.JSON() // built by the loop above
		dst = append(dst, j...)
	}
	if repeated {
		dst = append(dst, ']')
	}
	// The other fields follow as protojson's object, "{}" or "{…}", whose
	// opening brace becomes the comma after the endpoints.
	mark := len(dst)
	if dst, err = (protojson.MarshalOptions{}).MarshalAppend(dst, m); err != nil {
		return nil, err
	}
	rest := dst[mark:]
	if len(rest) < 2 || rest[0] != '{' || rest[len(rest)-1] != '}' {
		return nil, errors.New("server: unexpected protojson output")
	}
	if isSpace(rest[1 : len(rest)-1]) {
		return append(dst[:mark], '}'), nil
	}
	dst[mark] = ','
	return dst, nil
}

// appendJSON appends m's protojson. A watch change encoded once as JSON is
// its one whole-message record; one encoded in binary (the codecs and the
// fan-out disagreeing) is decoded first, so that nothing is lost.
func appendJSON(dst []byte, m proto.Message) ([]byte, error) {
	unknown := m.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return protojson.MarshalOptions{}.MarshalAppend(dst, m)
	}
	if isWholeJSON(m) {
		_, _, n := protowire.ConsumeTag(unknown)
		j, k := protowire.ConsumeBytes(unknown[n:])
		if k < 0 || n+k != len(unknown) {
			return nil, errors.New("server: malformed pre-encoded JSON")
		}
		return append(dst, j...), nil
	}
	decoded := m.ProtoReflect().New().Interface()
	if err := (proto.UnmarshalOptions{}).Unmarshal(unknown, decoded); err != nil {
		return nil, fmt.Errorf("server: decode a pre-encoded message: %w", err)
	}
	proto.Merge(decoded, m)
	decoded.ProtoReflect().SetUnknown(nil)
	return protojson.MarshalOptions{}.MarshalAppend(dst, decoded)
}

// isWholeJSON reports whether m's unknown fields are a whole-message
// protojson record.
func isWholeJSON(m proto.Message) bool {
	num, typ, n := protowire.ConsumeTag(m.ProtoReflect().GetUnknown())
	return n > 0 && num == wholeJSONField && typ == protowire.BytesType
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// Unmarshal implements connect.Codec.
func (jsonCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("server: cannot unmarshal into %T: not a protobuf message", v)
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
}
