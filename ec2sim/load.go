package ec2sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// maxFileBytes bounds the data file LoadFile reads.
const maxFileBytes = 1 << 30

// LoadFile reads endpoints from a JSON file: either a JSON array of
// clientvpn.v1.ClientVpnEndpoint objects in protojson form, or a
// ListClientVpnEndpointsResponse object (what vpnfacade's
// ListClientVpnEndpoints answers over Connect JSON). Endpoints without a
// region or account are put in the server's defaults by New.
func LoadFile(path string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load endpoints: %w", err)
	}
	if info.Size() > maxFileBytes {
		return nil, fmt.Errorf("load endpoints: %s is %d bytes, more than the %d allowed", path, info.Size(), maxFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load endpoints: %w", err)
	}
	eps, err := ParseEndpointsJSON(data)
	if err != nil {
		return nil, fmt.Errorf("load endpoints from %s: %w", path, err)
	}
	return eps, nil
}

// ParseEndpointsJSON decodes endpoints in the forms LoadFile accepts.
// Unknown fields are errors, so a typo does not silently drop data.
func ParseEndpointsJSON(data []byte) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("no JSON: expected an array of endpoints or a ListClientVpnEndpointsResponse object")
	}
	if trimmed[0] == '{' {
		var resp clientvpnv1.ListClientVpnEndpointsResponse
		if err := protojson.Unmarshal(trimmed, &resp); err != nil {
			return nil, fmt.Errorf("decode ListClientVpnEndpointsResponse: %w", err)
		}
		return resp.GetClientVpnEndpoints(), nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return nil, fmt.Errorf("expected a JSON array of endpoints or a ListClientVpnEndpointsResponse object: %w", err)
	}
	out := make([]*clientvpnv1.ClientVpnEndpoint, len(raw))
	for i, r := range raw {
		e := &clientvpnv1.ClientVpnEndpoint{}
		if err := protojson.Unmarshal(r, e); err != nil {
			return nil, fmt.Errorf("endpoint %d: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

// MarshalEndpointsJSON encodes endpoints as the JSON array LoadFile reads.
func MarshalEndpointsJSON(endpoints []*clientvpnv1.ClientVpnEndpoint) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, e := range endpoints {
		b, err := protojson.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode endpoint %d: %w", i, err)
		}
		if i > 0 {
			buf.WriteString(",\n")
		}
		buf.Write(b)
	}
	buf.WriteString("\n]\n")
	return buf.Bytes(), nil
}
