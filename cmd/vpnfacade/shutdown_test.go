package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// TestSIGTERMWithStuckClientsExitsZeroWithinTheGrace holds five requests
// whose bodies stall and one whose client stops reading, with timeouts far
// longer than the shutdown grace, then sends SIGTERM: the service closes
// them when the grace ends and exits 0.
func TestSIGTERMWithStuckClientsExitsZeroWithinTheGrace(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s := startSim(t, 1500, ec2sim.Options{})
	f := startFacadeProcess(t, s, "", nil, "--shutdown-grace", grace.String(), "--read-timeout", "5m", "--write-timeout", "5m")
	waitServing(t, f.url)
	addr := strings.TrimPrefix(f.url, "http://")

	// Five bodies that stall: the 100 Continue shows the handler is
	// reading each when the signal comes.
	for i := range 5 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints HTTP/1.1\r\nHost: %s\r\n"+
			"Content-Type: application/proto\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", addr)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, "100 Continue") {
			t.Fatalf("slow body %d: got %q, %v; want 100 Continue", i, line, err)
		}
		if _, err := conn.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}

	// A reader that takes one byte of a 1,000-endpoint page and no more:
	// an HTTP/2 stream window of one byte. Its response head shows the
	// handler is writing when the signal comes.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	stuck := &http.Client{Transport: &http.Transport{Protocols: &protocols, HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 1}}}
	body, _ := proto.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
	req, err := http.NewRequest(http.MethodPost, f.url+"/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	res, err := stuck.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("slow reader: %v %v", res, err)
	}
	defer res.Body.Close()

	start := time.Now()
	if err := f.Stop(grace + 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v; output:\n%s", err, f.Output())
	}
	if took := time.Since(start); took > grace+3*time.Second {
		t.Errorf("exited %s after SIGTERM, want within the %s grace (and a little for the rest of the shutdown)", took, grace)
	}
	if f.Count("closing the connections still busy after the grace") != 1 {
		t.Errorf("the log does not say stuck connections were closed:\n%s", f.Output())
	}
}
