package connlimit_test

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/connlimit"
)

// TestConnectionsBeyondTheBoundAreReset opens more connections from one
// address than the bound: the extra one is reset before the server reads a
// byte of it, another address is served meanwhile, and a closed
// connection gives its place back.
func TestConnectionsBeyondTheBoundAreReset(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	ln := connlimit.New(inner, connlimit.Options{PerAddress: 2, OnRefuse: func() { refused.Add(1) }}).(*connlimit.Listener)
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial("127.0.0.1")
	dial("127.0.0.1")
	served := []net.Conn{<-accepted, <-accepted}
	third, thirdErr := net.Dial("tcp", inner.Addr().String())
	// The next connection accepted is from another address: the third
	// was reset in between.
	dial("127.0.0.2")
	got := <-accepted
	if ip := got.RemoteAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.2" {
		t.Fatalf("accepted a connection from %s, want the one from 127.0.0.2", ip)
	}
	// Reset (not a clean end): the server kept no state for it. The
	// reset may come before the dial returns.
	if thirdErr == nil {
		defer third.Close()
		_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, thirdErr = third.Read(make([]byte, 1))
	}
	if !errors.Is(thirdErr, syscall.ECONNRESET) {
		t.Fatalf("the third connection from 127.0.0.1: %v, want a reset", thirdErr)
	}
	if refused.Load() != 1 || ln.Open(first.LocalAddr()) != 2 {
		t.Errorf("refused %d, open from 127.0.0.1 %d; want 1 and 2", refused.Load(), ln.Open(first.LocalAddr()))
	}
	// A closed connection gives its place back.
	served[0].Close()
	served[0].Close() // a second Close gives back nothing more
	fourth := dial("127.0.0.1")
	c := <-accepted
	if c.RemoteAddr().String() != fourth.LocalAddr().String() {
		t.Fatalf("accepted %s, want the fourth connection %s", c.RemoteAddr(), fourth.LocalAddr())
	}
	if ln.Open(first.LocalAddr()) != 2 {
		t.Errorf("open from 127.0.0.1: %d, want 2", ln.Open(first.LocalAddr()))
	}
}
