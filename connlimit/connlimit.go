// Package connlimit bounds the connections one client address may hold
// open to a listener. A connection over the bound is closed as soon as it
// is accepted, before any TLS handshake or HTTP work is spent on it, so
// that a client opening thousands of connections costs the server little
// more than the kernel's part of accepting them.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
)

// DefaultPerAddress is the default Options.PerAddress.
const DefaultPerAddress = 100

// Options configures a Listener.
type Options struct {
	// PerAddress is how many connections one client IP address (the /64
	// network for IPv6) may hold open at once. 0 means DefaultPerAddress;
	// negative: no limit.
	PerAddress int
	// OnRefuse, when set, is called for each connection refused.
	OnRefuse func()
}

// Listener is a net.Listener that closes, at once and with a reset, every
// accepted connection beyond the per-address bound.
type Listener struct {
	net.Listener
	opts Options

	mu   sync.Mutex
	open map[netip.Prefix]int
}

// New wraps ln. With a negative Options.PerAddress, ln is returned as is.
func New(ln net.Listener, opts Options) net.Listener {
	if opts.PerAddress == 0 {
		opts.PerAddress = DefaultPerAddress
	}
	if opts.PerAddress < 0 {
		return ln
	}
	return &Listener{Listener: ln, opts: opts, open: map[netip.Prefix]int{}}
}

// Accept implements net.Listener: it returns the next connection within
// the bound of its address.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := addressKey(c.RemoteAddr())
		if !ok {
			return c, nil
		}
		if l.claim(key) {
			return &conn{Conn: c, release: func() { l.release(key) }}, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// A reset: no FIN_WAIT or TIME_WAIT state kept for it here.
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		if l.opts.OnRefuse != nil {
			l.opts.OnRefuse()
		}
	}
}

// Open returns how many connections from the address of addr are open.
func (l *Listener) Open(addr net.Addr) int {
	key, _ := addressKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[key]
}

func (l *Listener) claim(key netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.opts.PerAddress {
		return false
	}
	l.open[key]++
	return true
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// addressKey is the group of a TCP peer (see AddressKey).
func addressKey(addr net.Addr) (netip.Prefix, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	return AddressKey(ip), true
}

// AddressKey is the group a client address is counted in by per-address
// limits: the address itself for IPv4, its /64 network for IPv6 (one host
// usually holds a whole /64).
func AddressKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := ip.BitLen()
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits) // cannot fail: bits is within the address's length
	return p
}

// conn gives its address's place back when closed, once.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close implements net.Conn.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite shuts the writing side down, as net/http does to end an
// HTTP/1 connection gracefully.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
