package server

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Responses carry endpoints the snapshot encoded once, at publish time: a
// handler puts the pre-encoded bytes in the response message's unknown
// fields, and the codecs write them out without encoding the endpoints
// again.
//
//   - Binary (gRPC, gRPC-Web, Connect proto): a repeated or singular message
//     field on the wire is a run of (tag, length, bytes) records, so the
//     endpoints' wire bytes appended as unknown records of the endpoints'
//     field number decode, in any client, as that field. The standard proto
//     marshaller copies unknown fields verbatim.
//   - JSON (Connect JSON): the handler puts each endpoint's protojson in
//     unknown records of a private field number instead, and jsonCodec
//     splices them into the protojson of the rest of the response under the
//     field's JSON name.
//
// A handler picks the form from the request's codec (requestWantsJSON), the
// way connect-go picks the codec. Should the two ever disagree, neither
// codec loses an endpoint: jsonCodec decodes binary records into the
// message before marshalling it, and protoCodec refuses a message carrying
// JSON records.

// jsonField is the private field number of pre-encoded JSON records: the
// largest field number protobuf allows, far from any the contract uses.
const jsonField protowire.Number = protowire.MaxValidNumber

// jsonName returns the JSON name of field n of message m.
func jsonName(m proto.Message, n protowire.Number) string {
	return m.ProtoReflect().Descriptor().Fields().ByNumber(n).JSONName()
}

// Field numbers of the endpoints in the responses, from the contract.
var (
	listEndpointsField = fieldNumber(&clientvpnv1.ListClientVpnEndpointsResponse{}, "client_vpn_endpoints")
	getEndpointField   = fieldNumber(&clientvpnv1.GetClientVpnEndpointResponse{}, "client_vpn_endpoint")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// setEndpoints stores endpoints in m's unknown fields as field number, in
// the encoding the caller's codec wants.
func setEndpoints(m proto.Message, number protowire.Number, endpoints []*snapshot.Endpoint, json bool) error {
	size := 0
	for _, e := range endpoints {
		size += protowire.SizeTag(number) + protowire.SizeBytes(len(e.Wire()))
	}
	if json {
		size = 0
	}
	buf := make([]byte, 0, size)
	for _, e := range endpoints {
		if json {
			j, err := e.JSON()
			if err != nil {
				return err
			}
			buf = protowire.AppendTag(buf, jsonField, protowire.BytesType)
			buf = protowire.AppendBytes(buf, j)
			continue
		}
		buf = protowire.AppendTag(buf, number, protowire.BytesType)
		buf = protowire.AppendBytes(buf, e.Wire())
	}
	m.ProtoReflect().SetUnknown(buf)
	return nil
}

// requestWantsJSON reports whether connect-go answers the call in JSON: a
// Connect GET with encoding=json, or a content type whose codec is json
// (application/json, application/connect+json, application/grpc+json,
// application/grpc-web+json).
func requestWantsJSON(info connect.CallInfo) bool {
	if info.HTTPMethod() == "GET" {
		return info.Peer().Query.Get("encoding") == "json"
	}
	mt, _, err := mime.ParseMediaType(info.RequestHeader().Get("Content-Type"))
	if err != nil {
		return false
	}
	_, sub, _ := strings.Cut(mt, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// protoCodec is connect-go's binary codec, refusing pre-encoded JSON
// records (see requestWantsJSON).
type protoCodec struct{}

// Name implements connect.Codec.
func (protoCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (c protoCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// MarshalAppend implements connect-go's buffer-reusing codec extension.
func (protoCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("server: cannot marshal %T: not a protobuf message", v)
	}
	if hasJSONRecords(m.ProtoReflect().GetUnknown()) {
		return nil, errors.New("server: a binary response carries pre-encoded JSON")
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// MarshalStable implements connect-go's stable codec extension.
func (c protoCodec) MarshalStable(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("server: cannot marshal %T: not a protobuf message", v)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
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
type jsonCodec struct{}

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
func (jsonCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("server: cannot marshal %T: not a protobuf message", v)
	}
	r := m.ProtoReflect()
	unknown := r.GetUnknown()
	if len(unknown) == 0 {
		return protojson.MarshalOptions{}.MarshalAppend(dst, m)
	}
	if !hasJSONRecords(unknown) {
		// Binary records: decode them into their fields.
		r.SetUnknown(nil)
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(unknown, m); err != nil {
			return nil, fmt.Errorf("server: decode pre-encoded endpoints: %w", err)
		}
		return protojson.MarshalOptions{}.MarshalAppend(dst, m)
	}
	var field protowire.Number
	var repeated bool
	switch m.(type) {
	case *clientvpnv1.ListClientVpnEndpointsResponse:
		field, repeated = listEndpointsField, true
	case *clientvpnv1.GetClientVpnEndpointResponse:
		field = getEndpointField
	default:
		return nil, fmt.Errorf("server: pre-encoded JSON in a %T", m)
	}
	r.SetUnknown(nil)
	rest, err := protojson.Marshal(m)
	r.SetUnknown(unknown)
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(dst)
	out.Grow(len(rest) + len(unknown) + 32)
	out.WriteString(`{"`)
	out.WriteString(jsonName(m, field))
	out.WriteString(`":`)
	if repeated {
		out.WriteByte('[')
	}
	first := true
	for b := unknown; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != jsonField || typ != protowire.BytesType {
			return nil, errors.New("server: malformed pre-encoded JSON")
		}
		b = b[n:]
		j, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errors.New("server: malformed pre-encoded JSON")
		}
		b = b[n:]
		if !first {
			out.WriteByte(',')
		}
		first = false
		out.Write(j)
	}
	if repeated {
		out.WriteByte(']')
	}
	// rest is the protojson object of the other fields: "{}" or "{…}".
	rest = bytes.TrimSpace(rest)
	inner := bytes.TrimSpace(rest[1 : len(rest)-1])
	if len(inner) > 0 {
		out.WriteByte(',')
		out.Write(inner)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// Unmarshal implements connect.Codec.
func (jsonCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("server: cannot unmarshal into %T: not a protobuf message", v)
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
}

// hasJSONRecords reports whether unknown holds pre-encoded JSON records.
func hasJSONRecords(unknown []byte) bool {
	if len(unknown) == 0 {
		return false
	}
	num, _, n := protowire.ConsumeTag(unknown)
	return n > 0 && num == jsonField
}
