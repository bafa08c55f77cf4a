package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// WatchClientVpnEndpoints implements clientvpnv1connect.ClientVpnServiceHandler.
func (s *ClientVpnService) WatchClientVpnEndpoints(ctx context.Context, req *clientvpnv1.WatchClientVpnEndpointsRequest, stream *connect.ServerStream[clientvpnv1.WatchClientVpnEndpointsResponse]) error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("WatchClientVpnEndpoints is not implemented yet"))
}
